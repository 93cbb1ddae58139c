// The suppression list: recipients that bounced for good or complained, refused at RCPT TO so
// that a sender stops mailing dead addresses and people who reported its mail as spam.
//
// Who writes it: preflight-classify (`log --suppress` over the Postfix log, `dsn --suppress` over
// bounces and ARF reports, `suppress add|import`). Who reads it: the milter at RCPT TO, and
// `suppress list|export|stats`. Both sides open the same store (SuppressionStore in preflight.conf):
// an SQLite file on one relay, or a Redis shared by a cluster.
//
// Whose fault decides (suppression_outcome(), a plain function): the recipient's faults
// (bad-mailbox, bad-domain, inactive-mailbox, a complaint) suppress at once; a full mailbox
// (quota-issues) only after SuppressionQuotaFailures failures within SuppressionQuotaPeriod; the
// sender's or the relay's faults (spam-related, policy-related, invalid-sender, bad-configuration,
// relaying-issues, content-related, virus-related, protocol-errors) never do: they are counted per
// sender domain instead, and the rest (connections, timeouts, routing, expiry) are not counted.
//
// An entry is keyed (scope, recipient): scope is the sender domain, or "*" for every sender.
// Times are unix seconds and always passed in (tests use their own clock). No cache: a lookup
// reads the store, so `suppress remove` takes effect on the next RCPT TO.
#pragma once

#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "config.hpp"
#include "metrics.hpp"
#include "verdict.hpp"

namespace preflight {

inline constexpr std::string_view kGlobalScope = "*";

enum class SuppressionSource { log, bounce, complaint, manual };
std::string_view to_string(SuppressionSource s);
std::optional<SuppressionSource> parse_suppression_source(std::string_view s);

struct SuppressionEntry {
    std::string scope;       // sender domain, or "*"
    std::string recipient;   // normalise_recipient()
    std::string category;    // the classifier's category ("bad-mailbox"), "complaint" or "manual"
    std::string reply;       // the remote reply, sanitise_remote_text()
    std::string remote_mta;  // who answered ("mx.example.net"), sanitised; may be empty
    SuppressionSource source = SuppressionSource::manual;
    std::int64_t first_seen = 0, last_seen = 0;  // unix seconds
    std::uint32_t count = 0;                     // failures recorded
    std::int64_t expires = 0;                    // unix seconds; 0: never
    bool active = false;                         // false: soft failures being counted, not suppressing yet

    bool expired(std::int64_t now) const { return expires != 0 && expires <= now; }
    bool operator==(const SuppressionEntry&) const = default;
};

// One failure (or a manual add) to record, as suppression_record() makes it from the conf.
struct SuppressionRecord {
    SuppressionEntry entry;       // scope, recipient, category, reply, remote_mta, source
    std::uint32_t threshold = 1;  // failures needed within period; 1: at once
    std::int64_t period = 0;      // seconds, for threshold > 1
    std::int64_t expiry = 0;      // seconds an active entry lives after now; 0: never
    std::int64_t now = 0;
};

// What a recorded failure does to the entry: the one merge rule every store applies (SQLite in a
// transaction, Redis under WATCH), so both stores count alike.
SuppressionEntry merge_suppression(const std::optional<SuppressionEntry>& existing, const SuppressionRecord& r);

// What a classified failure means for the list.
enum class SuppressionOutcome {
    suppress,      // the recipient's fault, for good: suppress now
    soft_failure,  // a full mailbox: counted, suppresses after the configured number
    sender_fault,  // the sender's or relay's fault: never suppresses; counted per sender domain
    none,          // not a verdict on the recipient (connection, timeout, routing, expiry...)
};
std::string_view to_string(SuppressionOutcome o);

// category: the classifier's name ("bad-mailbox"); permanent: the delivery failed for good
// (bounced, 5xx) rather than was deferred; complaint: an ARF abuse report.
SuppressionOutcome suppression_outcome(std::string_view category, bool permanent, bool complaint, const Settings& s);

// The record for an outcome of suppress or soft_failure, under the sender domain's settings;
// nothing for the other outcomes (or for a complaint when SuppressComplaints is no).
std::optional<SuppressionRecord> suppression_record(SuppressionOutcome o, std::string_view sender_domain,
                                                    std::string_view recipient, std::string_view category,
                                                    std::string_view reply, std::string_view remote_mta,
                                                    SuppressionSource source, const Settings& s, std::int64_t now);

// "<Bob@Example.NET.>" -> "bob@example.net": angle brackets and blanks dropped, lower case, a
// trailing dot of the domain dropped. "" when there is no '@' or the address is longer than 320.
std::string normalise_recipient(std::string_view address);
// The scope of a sender domain under a scope setting: the domain in lower case, or "*".
std::string suppression_scope(SuppressionScope scope, std::string_view sender_domain);

// Text from remote servers: printable ASCII only (other bytes become '?', controls are dropped,
// runs of blanks one space), at most max octets (cut at the last space when there is one).
std::string sanitise_remote_text(std::string_view text, std::size_t max = 200);

struct SuppressionLookup {
    bool ok = true;  // false: the store could not be used; error says why
    std::string error;
    std::optional<SuppressionEntry> entry;  // the active, unexpired entry (the domain's before "*")
};

struct SuppressionFilter {
    std::string scope;     // "": any
    std::string category;  // "": any
    std::string recipient;
    std::int64_t since = 0, until = 0;  // last_seen in [since, until); 0: open
    bool include_pending = false;       // soft failures still being counted
    bool include_expired = false;
};
bool matches(const SuppressionFilter& f, const SuppressionEntry& e, std::int64_t now);

struct SuppressionStats {
    std::vector<std::pair<std::string, std::uint64_t>> entries_by_reason;  // active, unexpired
    std::vector<std::pair<std::string, std::uint64_t>> adds_by_source;
    // "example.org|spam-related" -> failures that were the sender's fault
    std::vector<std::pair<std::string, std::uint64_t>> sender_faults;
};

class SuppressionStore {
public:
    virtual ~SuppressionStore() = default;
    // The active, unexpired entry for the recipient under the sender domain's scope or "*".
    virtual SuppressionLookup lookup(std::string_view scope, std::string_view recipient, std::int64_t now) = 0;
    // Applies merge_suppression() atomically; the entry as stored, or nothing with error set.
    virtual std::optional<SuppressionEntry> record(const SuppressionRecord& r, std::string* error) = 0;
    // Puts an entry as it is (import); false with error set.
    virtual bool put(const SuppressionEntry& e, std::string* error) = 0;
    // Many at once (import): SQLite in one transaction; false with error set, nothing put then
    // (SQLite) or the ones before the failure (Redis).
    virtual bool put_many(std::span<const SuppressionEntry> entries, std::string* error) = 0;
    // Removes (scope, recipient), or the recipient under every scope when scope is empty; the
    // number removed, or nothing with error set.
    virtual std::optional<std::size_t> remove(std::string_view scope, std::string_view recipient,
                                              std::string* error) = 0;
    virtual std::optional<std::vector<SuppressionEntry>> list(const SuppressionFilter& f, std::int64_t now,
                                                              std::string* error) = 0;
    virtual bool count_sender_fault(std::string_view sender_domain, std::string_view category, std::string* error) = 0;
    virtual std::optional<SuppressionStats> stats(std::int64_t now, std::string* error) = 0;
    // Trace tokens (trace_header.hpp): token -> (scope, recipient) until expires.
    virtual bool put_trace(std::string_view token, std::string_view scope, std::string_view recipient,
                           std::int64_t expires, std::string* error) = 0;
    virtual std::optional<std::pair<std::string, std::string>> find_trace(std::string_view token, std::int64_t now,
                                                                          std::string* error) = 0;
    virtual std::string describe() const = 0;
};

// SQLite: creates the file and tables (throws std::runtime_error when it cannot). Redis
// (redis://, redis-sentinel://): connects lazily (a Redis down at start is an error per lookup,
// not a failed start), through checks/store/redis_connection with AUTH from the credentials.
std::unique_ptr<SuppressionStore> open_suppression_store(const QuotaStoreSpec& spec, std::chrono::milliseconds timeout,
                                                         const RedisCredentials& credentials = {},
                                                         const RedisCredentials& sentinel_credentials = {});
// The store the conf's SuppressionStore* keys describe; throws std::runtime_error as above.
std::unique_ptr<SuppressionStore> open_suppression_store(const GlobalSettings& g);

// The RCPT TO verdict for a lookup: accept when nothing is suppressed; a refusal naming the
// reason (reply rows recipient_suppressed*); store errors give suppression_unavailable as a
// tempfail, or an accept carrying it when OnSuppressionStoreError is accept.
Verdict suppression_verdict(const SuppressionLookup& l, std::string_view address, SuppressionStoreErrorAction on_error);

// What the milter counts of its lookups, for /metrics: hits by the scope of the entry found, and
// lookups the store did not answer. Relaxed atomic adds; one instance for the process.
struct SuppressionCounters {
    metrics::Counter hits_domain, hits_global, store_errors;
};

// "2026-11-03" (UTC) for unix seconds.
std::string utc_date(std::int64_t unix_seconds);
// "2026-11-03T10:20:30Z" (UTC) for unix seconds; parse_utc() reads it back, or a bare date.
std::string utc_time(std::int64_t unix_seconds);
std::optional<std::int64_t> parse_utc(std::string_view text);

}  // namespace preflight
