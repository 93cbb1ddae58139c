// Plan periods (week, month with a billing day, in a time zone) and their counters in the
// stores: the clock is an argument everywhere, so renewals are tested at their instants, not
// by sleeping. The zones are read from the system's tz database (tzdata).
#include <catch2/catch.hpp>

#include <hiredis/hiredis.h>

#include <atomic>
#include <chrono>
#include <thread>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iterator>

#include "plan_period.hpp"
#include "quota.hpp"
#include "test_redis.hpp"
#include "time_zone.hpp"

using namespace preflight;

namespace {

// Unix seconds of a UTC date and time.
std::int64_t utc(int y, unsigned m, unsigned d, int hh = 0, int mm = 0) {
    using namespace std::chrono;
    const sys_days day = year_month_day(year(y), month(m), std::chrono::day(d));
    return static_cast<std::int64_t>(day.time_since_epoch().count()) * 86400 + hh * 3600 + mm * 60;
}

TimeZone zone(const char* name) {
    std::string why;
    auto z = TimeZone::load(name, &why);
    INFO(why);
    REQUIRE(z);
    return *z;
}

PeriodSpan month(std::int64_t at, const TimeZone& z, int billing_day = 1) {
    return plan_period_at(QuotaWindow::month, at, z, billing_day);
}

struct TempDir {
    std::string path;
    TempDir() {
        std::string tmpl = (std::filesystem::temp_directory_path() / "preflight-plan-XXXXXX").string();
        REQUIRE(mkdtemp(tmpl.data()) != nullptr);
        path = tmpl;
    }
    ~TempDir() {
        std::error_code ec;
        std::filesystem::remove_all(path, ec);
    }
};

QuotaCounter period_counter(const std::string& key, std::int64_t now_s, std::uint32_t limit, int billing_day,
                            std::uint32_t amount = 1) {
    QuotaCounter c{key, QuotaWindow::month, limit, amount};
    PeriodSpan p = month(now_s, TimeZone::utc(), billing_day);
    c.period_start_s = p.start_s;
    c.period_end_s = p.end_s;
    return c;
}

// What both stores must do with a billing month of 3 recipients, anchored on the 15th.
void period_contract(QuotaStore& store, const std::string& subject) {
    const std::string key = "tenant:" + subject + "|recipients|month";
    const std::int64_t t0 = utc(2026, 12, 7, 10);
    for (int i = 0; i < 3; ++i) {
        QuotaResult r = store.reserve(std::vector{period_counter(key, t0 + i, 3, 15)}, false, (t0 + i) * 1000);
        REQUIRE(r.ok);
        CHECK(r.counted);
        CHECK(r.used[0] == static_cast<std::uint64_t>(i));
        CHECK(r.buckets[0] == utc(2026, 12, 15));
    }
    QuotaResult over = store.reserve(std::vector{period_counter(key, t0 + 10, 3, 15)}, false, (t0 + 10) * 1000);
    REQUIRE(over.ok);
    CHECK(over.over == 0);
    CHECK_FALSE(over.counted);
    CHECK(over.retry_seconds == utc(2026, 12, 15) - (t0 + 10));  // the renewal, not a sliding age-out
    // A reservation given back frees its place in the period.
    QuotaResult forced = store.reserve(std::vector{period_counter(key, t0 + 11, 3, 15)}, true, (t0 + 11) * 1000);
    CHECK(forced.counted);
    REQUIRE(store.release(std::vector<QuotaHeld>{{key, forced.buckets[0], 1}}));
    CHECK(store.reserve(std::vector{period_counter(key, t0 + 12, 3, 15, 0)}, false, (t0 + 12) * 1000).used[0] == 3);
    // One second before the renewal: still full; at the renewal instant: empty again.
    const std::int64_t renew = utc(2026, 12, 15);
    CHECK(store.reserve(std::vector{period_counter(key, renew - 1, 3, 15)}, false, (renew - 1) * 1000).over == 0);
    QuotaResult renewed = store.reserve(std::vector{period_counter(key, renew, 3, 15)}, false, renew * 1000);
    CHECK(renewed.over == -1);
    CHECK(renewed.used[0] == 0);
    CHECK(renewed.buckets[0] == utc(2027, 1, 15));
    std::string error;
    auto keys = store.keys(&error);
    REQUIRE(keys);
    CHECK(std::find(keys->begin(), keys->end(), key) != keys->end());
}

}  // namespace

TEST_CASE("plan periods: calendar month and ISO week in UTC", "[quota][plan]") {
    const TimeZone z = TimeZone::utc();
    PeriodSpan m = month(utc(2026, 12, 7, 1, 52), z);
    CHECK(m.start_s == utc(2026, 12, 1));
    CHECK(m.end_s == utc(2027, 1, 1));                            // across the year's end
    CHECK(month(utc(2027, 1, 1), z).start_s == utc(2027, 1, 1));  // the renewal instant starts the new one
    CHECK(month(utc(2027, 1, 1) - 1, z).end_s == utc(2027, 1, 1));
    // 2026-12-07 is a Monday; 2026-12-13 23:59 still in that week.
    PeriodSpan w = plan_period_at(QuotaWindow::week, utc(2026, 12, 13, 23, 59), z, 1);
    CHECK(w.start_s == utc(2026, 12, 7));
    CHECK(w.end_s == utc(2026, 12, 14));
    CHECK(plan_period_at(QuotaWindow::week, utc(2026, 12, 14), z, 1).start_s == utc(2026, 12, 14));
    CHECK(local_time_text(utc(2027, 1, 15), z) == "2027-01-15 00:00 UTC");
    CHECK(rfc3339_text(utc(2027, 1, 15, 13, 5), z) == "2027-01-15T13:05:00+00:00");
}

TEST_CASE("plan periods: a billing day renews on that day, the last day of shorter months", "[quota][plan]") {
    const TimeZone z = TimeZone::utc();
    // Bought on the 15th: renews on the 15th.
    PeriodSpan p = month(utc(2026, 12, 7), z, 15);
    CHECK(p.start_s == utc(2026, 11, 15));
    CHECK(p.end_s == utc(2026, 12, 15));
    CHECK(month(utc(2026, 12, 15), z, 15).start_s == utc(2026, 12, 15));
    CHECK(month(utc(2026, 12, 15), z, 15).end_s == utc(2027, 1, 15));
    // Day 31: Apr 30 in April, then May 31 again.
    CHECK(month(utc(2027, 4, 10), z, 31).start_s == utc(2027, 3, 31));
    CHECK(month(utc(2027, 4, 10), z, 31).end_s == utc(2027, 4, 30));
    CHECK(month(utc(2027, 4, 30), z, 31).end_s == utc(2027, 5, 31));
    // February: 28 days in 2027, 29 in the leap year 2028, for anchors 29, 30 and 31.
    for (int day : {29, 30, 31}) {
        INFO("BillingDay " << day);
        CHECK(month(utc(2027, 2, 10), z, day).end_s == utc(2027, 2, 28));
        CHECK(month(utc(2028, 2, 10), z, day).end_s == utc(2028, 2, 29));
        CHECK(month(utc(2028, 2, 29), z, day).start_s == utc(2028, 2, 29));
        CHECK(month(utc(2028, 2, 29), z, day).end_s == utc(2028, 3, static_cast<unsigned>(day)));
    }
    // 2100 is not a leap year.
    CHECK(month(utc(2100, 2, 10), z, 29).end_s == utc(2100, 2, 28));
}

TEST_CASE("plan periods: local midnight of a zone, across DST changes", "[quota][plan]") {
    const TimeZone berlin = zone("Europe/Berlin");
    // March 2027 starts in CET (+1) and ends in CEST (+2): 31 days minus the lost hour.
    PeriodSpan m = month(utc(2027, 3, 20), berlin);
    CHECK(m.start_s == utc(2027, 2, 28, 23));
    CHECK(m.end_s == utc(2027, 3, 31, 22));
    CHECK(m.end_s - m.start_s == 31 * 86400 - 3600);
    CHECK(local_time_text(m.end_s, berlin) == "2027-04-01 00:00 CEST");
    CHECK(rfc3339_text(m.end_s, berlin) == "2027-04-01T00:00:00+02:00");
    // The UTC instant before local midnight already belongs to the next local day.
    CHECK(month(utc(2027, 3, 31, 22, 30), berlin).start_s == utc(2027, 3, 31, 22));
    // October: the hour comes back.
    PeriodSpan oct = month(utc(2027, 10, 15), berlin);
    CHECK(oct.end_s - oct.start_s == 31 * 86400 + 3600);
    // Santiago skips midnight on 2026-09-06 (00:00 -04 becomes 01:00 -03): that day starts at 01:00.
    const TimeZone santiago = zone("America/Santiago");
    PeriodSpan s = month(utc(2026, 9, 20), santiago, 6);
    CHECK(s.start_s == utc(2026, 9, 6, 4));
    CHECK(local_time_text(s.start_s, santiago) == "2026-09-06 01:00 -03");
    CHECK(santiago.first_instant_at(utc(2026, 9, 6)) == utc(2026, 9, 6, 4));
}

TEST_CASE("time zones: bad names are refused with the reason", "[quota][plan]") {
    std::string why;
    CHECK_FALSE(TimeZone::load("Mars/Olympus", &why));
    CHECK(why.find("unknown time zone Mars/Olympus") != std::string::npos);
    CHECK_FALSE(TimeZone::load("../etc/passwd", &why));
    CHECK(why.find("is not a time zone name") != std::string::npos);
    CHECK_FALSE(TimeZone::load("zone.tab", &why));  // a file of the tz directory that is not TZif
    CHECK(why.find("not a TZif") != std::string::npos);
}

TEST_CASE("time zones: a truncated or corrupted TZif file is an error, never a crash", "[quota][plan][hostile]") {
    std::ifstream in("/usr/share/zoneinfo/Europe/Berlin", std::ios::binary);
    REQUIRE(in);
    const std::string whole((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    TempDir dir;
    auto load_bytes = [&](const std::string& bytes) {
        std::ofstream(dir.path + "/Zone", std::ios::binary | std::ios::trunc) << bytes;
        std::string why;
        auto z = TimeZone::load("Zone", &why, dir.path);
        if (!z) CHECK_FALSE(why.empty());
        return z.has_value();
    };
    CHECK(load_bytes(whole));
    // Cut anywhere before the footer: refused (the 64-bit block is incomplete).
    for (std::size_t n = 0; n + 60 < whole.size(); n += 7) {
        INFO("first " << n << " bytes");
        CHECK_FALSE(load_bytes(whole.substr(0, n)));
    }
    // Every byte of the headers and the start of the data set to 0xff in turn: refused or read,
    // within bounds (ASan checks the reads).
    for (std::size_t i = 0; i < 200 && i < whole.size(); ++i) {
        std::string bad = whole;
        bad[i] = '\xff';
        load_bytes(bad);
    }
}

TEST_CASE("plan periods in the SQLite store: exact, released, renewed, purged after the end", "[quota][plan]") {
    TempDir dir;
    auto spec = parse_quota_store("sqlite:" + dir.path + "/q.db");
    REQUIRE(spec);
    {
        auto store = open_quota_store(*spec, std::chrono::milliseconds(1000));
        period_contract(*store, "acme");
    }
    // Survives a restart; the ended period is purged once kPeriodKeepSeconds have passed.
    auto store = open_quota_store(*spec, std::chrono::milliseconds(1000));
    const std::string key = "tenant:acme|recipients|month";
    const std::int64_t renew = utc(2026, 12, 15);
    CHECK(store->reserve(std::vector{period_counter(key, renew + 5, 3, 15, 0)}, false, (renew + 5) * 1000).used[0] ==
          1);
    const std::string other = "tenant:idle|recipients|month";
    REQUIRE(store->reserve(std::vector{period_counter(other, renew - 100, 3, 15)}, false, (renew - 100) * 1000).ok);
    std::string error;
    auto before = store->keys(&error);
    REQUIRE(before);
    CHECK(std::find(before->begin(), before->end(), other) != before->end());
    const std::int64_t later = renew + kPeriodKeepSeconds + 120;
    REQUIRE(store->reserve(std::vector{period_counter(key, later, 3, 15)}, false, later * 1000).ok);
    auto after = store->keys(&error);
    REQUIRE(after);
    CHECK(std::find(after->begin(), after->end(), other) == after->end());
}

TEST_CASE("plan periods in the SQLite store: exact under concurrency on two handles", "[quota][plan]") {
    TempDir dir;
    auto spec = parse_quota_store("sqlite:" + dir.path + "/q.db");
    REQUIRE(spec);
    auto a = open_quota_store(*spec, std::chrono::milliseconds(5000));
    auto b = open_quota_store(*spec, std::chrono::milliseconds(5000));
    const std::int64_t now = utc(2026, 12, 7, 10);
    std::atomic<int> accepted{0}, errors{0};
    auto worker = [&](QuotaStore& s) {
        const std::vector<QuotaCounter> c{period_counter("tenant:busy|recipients|month", now, 200, 1)};
        for (int i = 0; i < 150; ++i) {
            QuotaResult r = s.reserve(c, false, now * 1000);
            if (!r.ok) ++errors;
            else if (r.counted) ++accepted;
        }
    };
    std::vector<std::thread> threads;
    for (int t = 0; t < 4; ++t) threads.emplace_back(worker, t % 2 ? std::ref(*a) : std::ref(*b));
    for (auto& t : threads) t.join();
    CHECK(errors == 0);
    CHECK(accepted == 200);  // 600 tried
}

namespace {
struct RedisFree {
    void operator()(redisContext* c) const noexcept { redisFree(c); }
};
struct ReplyFree {
    void operator()(redisReply* r) const noexcept { freeReplyObject(r); }
};

// PEXPIRETIME of a key (Redis 7): its expiry in unix ms, -1 none, -2 no key.
long long expiry_ms(const std::string& where, const std::string& key) {
    const auto colon = where.rfind(':');
    std::unique_ptr<redisContext, RedisFree> c(
        redisConnect(where.substr(0, colon).c_str(), std::stoi(where.substr(colon + 1))));
    REQUIRE((c && !c->err));
    if (const RedisCredentials who = test::test_redis_credentials(); !who.password.empty()) {
        std::unique_ptr<redisReply, ReplyFree> auth(static_cast<redisReply*>(
            who.user.empty() ? redisCommand(c.get(), "AUTH %s", who.password.c_str())
                             : redisCommand(c.get(), "AUTH %s %s", who.user.c_str(), who.password.c_str())));
        REQUIRE((auth && auth->type == REDIS_REPLY_STATUS));
    }
    std::unique_ptr<redisReply, ReplyFree> r(
        static_cast<redisReply*>(redisCommand(c.get(), "PEXPIRETIME %b", key.data(), key.size())));
    REQUIRE((r && r->type == REDIS_REPLY_INTEGER));
    return r->integer;
}
}  // namespace

// Hidden: it needs the Redis that milter.redis_store starts.
TEST_CASE("plan periods in the Redis store: the same, and the key expires after the period", "[quota][.redis]") {
    const char* where = std::getenv("PREFLIGHT_TEST_REDIS");
    REQUIRE(where);
    auto store = test::test_redis();
    REQUIRE(store);
    const std::string subject = "acme-" + std::to_string(getpid()) + "-" +
                                std::to_string(std::chrono::steady_clock::now().time_since_epoch().count());
    period_contract(*store, subject);
    // The last reservation was in the period that renews on 2027-01-15: the key lives until an
    // hour after that.
    const std::string key = "tenant:" + subject + "|recipients|month";
    const long long until = (utc(2027, 1, 15) + kPeriodKeepSeconds) * 1000;
    CHECK(expiry_ms(where, "pfq:" + key) == until);
    // A relay whose clock lags (still in the period ending Dec 15) counts there, and does not
    // shorten the key's life.
    const std::int64_t lag = utc(2026, 12, 15) - 10;
    REQUIRE(store->reserve(std::vector{period_counter(key, lag, 5, 15)}, true, lag * 1000).counted);
    CHECK(expiry_ms(where, "pfq:" + key) == until);
}
