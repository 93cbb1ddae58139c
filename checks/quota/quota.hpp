// Sending quotas: per sender domain, sender address or SASL login (QuotaPer), counted in
// recipients and/or messages (QuotaRecipients, QuotaMessages) over sliding windows of a minute,
// an hour or a day, in a store shared by the processes that use it (QuotaStore).
//
// Windows. Each counter (one subject, one unit, one window) is kept in 60 buckets of 1/60 of the
// window (1 s for a minute, 1 min for an hour, 24 min for a day); its usage is the sum of the
// current bucket and the 59 before it, so the window slides in steps of 1/60 of its length and
// old usage expires bucket by bucket, not all at once at midnight. A bucket index is
// floor(unix time / granularity), the same number on every relay (the relays' clocks are assumed
// NTP-synchronised; a skew shifts bucket edges by the skew, nothing more).
//
// Counting point: reserve at RCPT TO, release on abort. A recipient is reserved (checked and
// added in one atomic step in the store) when the milter accepts it; if the transaction does not
// end with the message accepted (another check refuses it at end of message, the client or
// Postfix aborts, the connection drops), MessageSession gives the reservation back. Counting only
// at end of message would let concurrent transactions on several relays all pass their RCPT
// checks against the same remaining quota and overshoot it; reserving makes the RCPT check
// exact under any concurrency. A milter that dies between reserve and release leaves the
// reservation counted until it ages out of the window (the safe side: never more than the
// quota). A message counts once, at its first accepted recipient.
//
// Failure: a store that cannot be reached gives QuotaResult::ok == false, never an exception;
// OnQuotaStoreError decides (tempfail by default).
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "config.hpp"
#include "time_zone.hpp"
#include "verdict.hpp"

namespace preflight {

inline constexpr std::int64_t kQuotaBuckets = 60;

// Seconds per bucket of a window: 1, 60, 1440.
inline std::int64_t bucket_seconds(QuotaWindow w) { return window_seconds(w) / kQuotaBuckets; }
inline std::int64_t bucket_of(QuotaWindow w, std::int64_t now_ms) { return now_ms / 1000 / bucket_seconds(w); }

// One counter to check and add to: `amount` more of `limit` per `window`.
struct QuotaCounter {
    std::string key;  // "domain:example.org|recipients|day" (the store adds its own prefix)
    QuotaWindow window = QuotaWindow::day;
    std::uint32_t limit = 0;
    std::uint32_t amount = 0;
    // Plan periods (window week or month, plan_period.hpp): the span the usage counts in.
    // The store keeps one count per period under the bucket period_end_s (the renewal) and
    // drops it once the period has ended.
    std::int64_t period_start_s = 0, period_end_s = 0;
};

// Seconds a period's count is kept after the period ended: relays whose clocks lag a little
// still find it, and --quota-status can show the period just ended.
inline constexpr std::int64_t kPeriodKeepSeconds = 3600;

// What reserve() added, to give back with release().
struct QuotaHeld {
    std::string key;
    std::int64_t bucket = 0;
    std::uint32_t amount = 0;
};

struct QuotaResult {
    bool ok = true;  // false: the store could not be used; error says why
    std::string error;
    int over = -1;                      // the first counter the amount would take beyond its limit, or -1
    std::int64_t retry_seconds = 0;     // over: when enough usage has aged out (or the period renews)
    bool counted = false;               // the amounts were added (none over, or force)
    std::vector<std::uint64_t> used;    // per counter, before this call
    std::vector<std::int64_t> buckets;  // per counter, where the amount went

    // The result of a store that could not be used.
    static QuotaResult failure(std::string why) {
        QuotaResult r;
        r.ok = false;
        r.error = std::move(why);
        return r;
    }
};

class QuotaStore {
public:
    virtual ~QuotaStore() = default;
    // Atomically (against every process using the store): sums each counter's window and,
    // unless one would go over its limit (or when force), adds every amount. Amount 0 only reads.
    virtual QuotaResult reserve(std::span<const QuotaCounter> counters, bool force, std::int64_t now_ms) = 0;
    // Gives back what reserve() added; buckets already out of the window are left alone.
    // False (logged by the caller) when the store could not be reached: the usage stays counted.
    virtual bool release(std::span<const QuotaHeld> held, std::string* error = nullptr) noexcept = 0;
    // Every counter key in the store (for --quota-status); nullopt with error on failure.
    virtual std::optional<std::vector<std::string>> keys(std::string* error) = 0;
    virtual std::string describe() const = 0;  // "sqlite:/var/lib/...", "redis://127.0.0.1:6379"
};

// Opens the store a spec names. SQLite: creates the file and table (throws std::runtime_error
// when it cannot). Redis: connects lazily, so a Redis that is down at start is a store error
// per transaction, not a failed start; credentials (QuotaStorePasswordFile) are sent with AUTH.
std::unique_ptr<QuotaStore> open_quota_store(const QuotaStoreSpec& spec, std::chrono::milliseconds timeout,
                                             const RedisCredentials& credentials = {},
                                             const RedisCredentials& sentinel_credentials = {});
// The store the conf's Quota* keys describe.
std::unique_ptr<QuotaStore> open_quota_store(const GlobalSettings& g);

// The subject a quota counts for a transaction, or "" when none applies (null sender).
// Keys: "domain:example.org", "sender:user@example.org", "login:alice" (lower case but the login);
// a tenant of the tenants file counts as "tenant:NAME" (checks/tenants/tenants.hpp).
std::string quota_subject(QuotaPer per, std::string_view sender, std::string_view domain, std::string_view login);
// As a reply names it: "example.org", "user@example.org", "login alice", "tenant acme".
std::string quota_subject_text(std::string_view subject);

// A counter's key: "SUBJECT|UNIT|WINDOW", e.g. "domain:example.org|recipients|day"; UNIT is
// "recipients" or "messages". quota_key() writes it, parse_quota_key() reads it back (nothing for
// a key of another shape).
struct QuotaKey {
    std::string subject, unit;
    QuotaWindow window = QuotaWindow::day;
};
std::string quota_key(std::string_view subject, std::string_view unit, QuotaWindow window);
std::optional<QuotaKey> parse_quota_key(std::string_view key);
// Whether a counter key is a plan period's (ends in "|week" or "|month").
bool is_period_key(std::string_view key);

// The counters of one accepted recipient: every QuotaRecipients rate with amount 1, and every
// QuotaMessages rate with amount 1 when first_recipient (a message counts once).
// Plan periods (week, month) get the span that contains now_ms in zone (UTC when null).
std::vector<QuotaCounter> quota_counters(const Settings& s, std::string_view subject, bool first_recipient,
                                         std::int64_t now_ms = 0, const TimeZone* zone = nullptr);

// "50,000": a count as a reply writes it.
std::string grouped_number(std::uint64_t n);

// "3 h 12 min", "5 min", "42 s" (rounded up: never earlier than the truth).
std::string duration_words(std::int64_t seconds);

// The verdict for a reserve() result (accept when within every limit); store errors give
// quota_store_failure as a tempfail, or an accept carrying that reply when OnQuotaStoreError is
// accept (so the log says the recipient went uncounted).
// A plan period over its limit gives plan_exceeded_*, naming the limit, the usage and the
// renewal in zone (UTC when null).
Verdict quota_verdict(const QuotaResult& r, std::span<const QuotaCounter> counters, std::string_view subject,
                      int quota_code, QuotaStoreErrorAction on_error, const TimeZone* zone = nullptr);

// For stores computing QuotaResult::retry_seconds: live buckets (index, count) of the counter
// that is over, its usage, the amount, its limit and window.
std::int64_t quota_retry_seconds(std::vector<std::pair<std::int64_t, std::uint64_t>> live, std::uint64_t used,
                                 std::uint32_t amount, std::uint32_t limit, QuotaWindow window, std::int64_t now_ms);

}  // namespace preflight
