// Plan periods (see plan_period.hpp): civil dates with std::chrono's calendar types (complete
// in GCC 12), local midnights turned into instants by TimeZone.
#include "plan_period.hpp"

#include <chrono>
#include <algorithm>
#include <cstdio>

namespace preflight {
namespace {

using namespace std::chrono;

constexpr std::int64_t kDay = 86400;

std::int64_t local_midnight_s(const year_month_day& d) {
    return static_cast<std::int64_t>(sys_days(d).time_since_epoch().count()) * kDay;
}

// Day `anchor` of a month, or its last day when the month is shorter.
year_month_day anchored_day(year_month ym, int anchor) {
    const unsigned days_in_month = static_cast<unsigned>((ym / std::chrono::last).day());
    const unsigned d = std::min(static_cast<unsigned>(anchor), days_in_month);
    return ym / day(d);
}

year_month_day local_date(std::int64_t local_s) {
    std::int64_t days = local_s >= 0 ? local_s / kDay : -((-local_s + kDay - 1) / kDay);
    return year_month_day(sys_days(std::chrono::days(days)));
}

PeriodSpan week_at(std::int64_t utc_s, const TimeZone& zone) {
    const year_month_day today = local_date(zone.to_local(utc_s));
    const sys_days day_no(today);
    const unsigned since_monday = (weekday(day_no) - Monday).count();  // 0..6
    const sys_days monday = day_no - std::chrono::days(since_monday);
    const std::int64_t start_local = static_cast<std::int64_t>(monday.time_since_epoch().count()) * kDay;
    return {zone.first_instant_at(start_local), zone.first_instant_at(start_local + 7 * kDay)};
}

PeriodSpan month_at(std::int64_t utc_s, const TimeZone& zone, int billing_day) {
    const std::int64_t local = zone.to_local(utc_s);
    const year_month_day today = local_date(local);
    const year_month ym(today.year(), today.month());
    year_month_day start = anchored_day(ym, billing_day);
    // Before this month's renewal instant the period began in the month before.
    if (utc_s < zone.first_instant_at(local_midnight_s(start))) start = anchored_day(ym - months(1), billing_day);
    const year_month_day end = anchored_day(year_month(start.year(), start.month()) + months(1), billing_day);
    return {zone.first_instant_at(local_midnight_s(start)), zone.first_instant_at(local_midnight_s(end))};
}

}  // namespace

PeriodSpan plan_period_at(QuotaWindow w, std::int64_t utc_s, const TimeZone& zone, int billing_day) {
    if (billing_day < 1 || billing_day > 31) billing_day = 1;
    if (w == QuotaWindow::week) return week_at(utc_s, zone);
    return month_at(utc_s, zone, billing_day);
}

std::string local_time_text(std::int64_t utc_s, const TimeZone& zone) {
    const std::int64_t local = zone.to_local(utc_s);
    const year_month_day d = local_date(local);
    const std::int64_t in_day = local - local_midnight_s(d);
    char buf[64];
    std::snprintf(buf, sizeof buf, "%04d-%02u-%02u %02lld:%02lld", static_cast<int>(d.year()),
                  static_cast<unsigned>(d.month()), static_cast<unsigned>(d.day()),
                  static_cast<long long>(in_day / 3600), static_cast<long long>(in_day % 3600 / 60));
    return std::string(buf) + " " + zone.abbreviation_at(utc_s);
}

std::string rfc3339_text(std::int64_t utc_s, const TimeZone& zone) {
    const std::int64_t local = zone.to_local(utc_s);
    const year_month_day d = local_date(local);
    const std::int64_t in_day = local - local_midnight_s(d);
    const std::int32_t off = zone.offset_at(utc_s);
    const std::int32_t off_abs = off < 0 ? -off : off;
    char buf[64];
    std::snprintf(buf, sizeof buf, "%04d-%02u-%02uT%02lld:%02lld:%02lld%c%02d:%02d", static_cast<int>(d.year()),
                  static_cast<unsigned>(d.month()), static_cast<unsigned>(d.day()),
                  static_cast<long long>(in_day / 3600), static_cast<long long>(in_day % 3600 / 60),
                  static_cast<long long>(in_day % 60), off < 0 ? '-' : '+', off_abs / 3600, off_abs % 3600 / 60);
    return buf;
}

}  // namespace preflight
