// Plan periods: fixed spans that renew, as plans are sold (QuotaRecipients 50000/month), next
// to the sliding windows of quota.hpp. A period's usage starts at zero when it renews.
//
//   week   Monday 00:00 to the next Monday 00:00, local time of PlanTimeZone (ISO weeks).
//   month  the billing month: from day BillingDay (1..31, default 1: the calendar month) at
//          00:00 local time to the same day of the next month. A day the month does not have
//          is its last day: BillingDay 31 renews on Apr 30, then on May 31; BillingDay 29
//          renews on Feb 28 in common years and Feb 29 in leap years.
// Midnight skipped by a DST change (a few zones change at 00:00) starts the day at the end of
// the gap; a midnight that happens twice counts from the first.
//
// All functions are pure over an instant and a zone: the clock is the caller's (tests inject
// one), and every relay computes the same span from the same instant.
#pragma once

#include <cstdint>
#include <string>

#include "config.hpp"
#include "time_zone.hpp"

namespace preflight {

inline bool is_plan_period(QuotaWindow w) { return w == QuotaWindow::week || w == QuotaWindow::month; }

struct PeriodSpan {
    std::int64_t start_s = 0;  // UTC seconds, inclusive
    std::int64_t end_s = 0;    // UTC seconds, exclusive: the renewal
};

// The period of kind w (week or month) that contains utc_s. billing_day: 1..31 (month only).
PeriodSpan plan_period_at(QuotaWindow w, std::int64_t utc_s, const TimeZone& zone, int billing_day);

// "2027-01-15 00:00 UTC", "2027-03-29 00:00 CEST": the instant in the zone, for replies.
std::string local_time_text(std::int64_t utc_s, const TimeZone& zone);
// "2027-01-15T00:00:00+01:00" (RFC 3339), for JSON.
std::string rfc3339_text(std::int64_t utc_s, const TimeZone& zone);

}  // namespace preflight
