// The cluster suppression store: Redis through hiredis (SuppressionStore redis://HOST[:PORT][/DB]
// or redis-sentinel://SENTINELS/MASTER[/DB]).
//
// An entry is one string "pfs:e:<scope>|<recipient>" holding its fields tab-separated (every text
// field is sanitised printable ASCII, so no tab or newline inside), with EXPIREAT at its expiry,
// so Redis forgets expired entries by itself. The RCPT TO lookup is one MGET of the domain's key
// and the "*" key: one round trip. record() reads, merges (merge_suppression(), the same rule as
// SQLite) and writes under WATCH/MULTI/EXEC, retried when another relay wrote the entry in
// between. Counters: hash "pfs:counts" ("adds|SOURCE", "sender-fault|DOMAIN|CATEGORY"). Trace
// tokens: "pfs:t:<token>" = "<scope>\t<recipient>" with EXPIREAT.
//
// The connection is checks/store/redis_connection, the quota store's: AUTH from
// SuppressionStorePasswordFile, Sentinel, connect and every reply bounded by
// SuppressionStoreTimeout, a broken connection dropped and reopened, and after a failed connect
// the next attempt waits a second, so a dead Redis costs a lookup only the error.
//
// Sentinel: Redis replicates asynchronously, so a write the master acknowledged may be missing on
// the replica a failover promotes. The writes an operator or a feed takes as done (an entry
// recorded, put or removed) are acknowledged only once a replica holds them (WAIT 1, within the
// timeout), as the quota store's reservations; counters and trace tokens are not (a lost one
// costs a statistic or the attribution of one bounce, and a trace token is written for every
// accepted message, where a WAIT would add a round trip to a replica).
#include <hiredis/hiredis.h>

#include <algorithm>
#include <charconv>
#include <map>
#include <mutex>

#include "redis_connection.hpp"
#include "suppression.hpp"

namespace preflight {
namespace {

using Reply = RedisReply;

constexpr std::string_view kEntryPrefix = "pfs:e:";
constexpr std::string_view kTracePrefix = "pfs:t:";
constexpr std::string_view kCounts = "pfs:counts";
constexpr int kWatchAttempts = 20;

std::string entry_key(std::string_view scope, std::string_view recipient) {
    std::string k(kEntryPrefix);
    k.append(scope).append("|").append(recipient);
    return k;
}

std::string serialise(const SuppressionEntry& e) {
    std::string out;
    for (std::string_view f : {std::string_view(e.scope), std::string_view(e.recipient), std::string_view(e.category),
                               std::string_view(e.reply), std::string_view(e.remote_mta), to_string(e.source)})
        out.append(f).append("\t");
    for (std::int64_t n : {e.first_seen, e.last_seen, static_cast<std::int64_t>(e.count), e.expires,
                           static_cast<std::int64_t>(e.active)})
        out.append(std::to_string(n)).append("\t");
    out.pop_back();
    return out;
}

std::optional<SuppressionEntry> deserialise(std::string_view text) {
    std::vector<std::string_view> f;
    for (std::size_t at = 0;;) {
        auto tab = text.find('\t', at);
        f.push_back(text.substr(at, tab == std::string_view::npos ? std::string_view::npos : tab - at));
        if (tab == std::string_view::npos) break;
        at = tab + 1;
    }
    if (f.size() != 11) return std::nullopt;
    std::int64_t n[5]{};
    for (int i = 0; i < 5; ++i) {
        std::string_view v = f[static_cast<std::size_t>(6 + i)];
        auto [p, ec] = std::from_chars(v.data(), v.data() + v.size(), n[i]);
        if (ec != std::errc() || p != v.data() + v.size()) return std::nullopt;
    }
    auto source = parse_suppression_source(f[5]);
    if (!source) return std::nullopt;
    return SuppressionEntry{std::string(f[0]),
                            std::string(f[1]),
                            std::string(f[2]),
                            std::string(f[3]),
                            std::string(f[4]),
                            *source,
                            n[0],
                            n[1],
                            static_cast<std::uint32_t>(n[2]),
                            n[3],
                            n[4] != 0};
}

std::string reply_string(const redisReply* r) { return r->str ? std::string(r->str, r->len) : std::string(); }

// "*" "?" "[" "]" "\" are glob characters to SCAN MATCH.
std::string glob_escape(std::string_view s) {
    std::string out;
    for (char c : s) {
        if (c == '*' || c == '?' || c == '[' || c == ']' || c == '\\') out += '\\';
        out += c;
    }
    return out;
}

class RedisSuppressionStore final : public SuppressionStore {
public:
    explicit RedisSuppressionStore(RedisEndpoint endpoint)
        : redis_(std::move(endpoint)), replicas_(redis_.sentinel_mode() ? 1 : 0) {}

    SuppressionLookup lookup(std::string_view scope, std::string_view recipient, std::int64_t now) override {
        SuppressionLookup out;
        std::lock_guard lock(mutex_);
        try {
            Reply r = redis_.command({"MGET", entry_key(scope, recipient), entry_key(kGlobalScope, recipient)});
            if (r->type != REDIS_REPLY_ARRAY || r->elements != 2) throw RedisError("unexpected MGET reply");
            for (std::size_t i = 0; i < 2 && !out.entry; ++i) {
                if (r->element[i]->type != REDIS_REPLY_STRING) continue;
                auto e = deserialise(reply_string(r->element[i]));
                if (e && e->active && !e->expired(now)) out.entry = std::move(e);
            }
        } catch (const std::exception& e) {
            out.ok = false;
            out.error = e.what();
        }
        return out;
    }

    std::optional<SuppressionEntry> record(const SuppressionRecord& r, std::string* error) override {
        std::lock_guard lock(mutex_);
        try {
            const std::string key = entry_key(r.entry.scope, r.entry.recipient);
            for (int attempt = 0; attempt < kWatchAttempts; ++attempt)
                if (std::optional<SuppressionEntry> merged = try_record(key, r)) return merged;
            throw RedisError("the entry kept changing under WATCH");
        } catch (const std::exception& e) {
            if (error) *error = e.what();
            discard();
            return std::nullopt;
        }
    }

    bool put(const SuppressionEntry& e, std::string* error) override {
        std::lock_guard lock(mutex_);
        try {
            redis_.replicated_command(set_command(entry_key(e.scope, e.recipient), e), replicas_);
            redis_.command({"HINCRBY", std::string(kCounts), "adds|" + std::string(to_string(e.source)), "1"});
            return true;
        } catch (const std::exception& ex) {
            if (error) *error = ex.what();
            return false;
        }
    }

    bool put_many(std::span<const SuppressionEntry> entries, std::string* error) override {
        for (const SuppressionEntry& e : entries)
            if (!put(e, error)) return false;
        return true;
    }

    std::optional<std::size_t> remove(std::string_view scope, std::string_view recipient, std::string* error) override {
        std::lock_guard lock(mutex_);
        try {
            std::vector<std::string> keys;
            if (!scope.empty()) keys.push_back(entry_key(scope, recipient));
            else scan(std::string(kEntryPrefix) + "*|" + glob_escape(recipient), keys);
            std::size_t removed = 0;
            for (const std::string& k : keys) {
                Reply r = redis_.replicated_command({"DEL", k}, replicas_);
                if (r->type == REDIS_REPLY_INTEGER) removed += static_cast<std::size_t>(r->integer);
            }
            return removed;
        } catch (const std::exception& e) {
            if (error) *error = e.what();
            return std::nullopt;
        }
    }

    std::optional<std::vector<SuppressionEntry>> list(const SuppressionFilter& f, std::int64_t now,
                                                      std::string* error) override {
        std::lock_guard lock(mutex_);
        try {
            std::vector<std::string> keys;
            scan(std::string(kEntryPrefix) + (f.scope.empty() ? "*" : glob_escape(f.scope) + "|*"), keys);
            std::vector<SuppressionEntry> out;
            for (std::size_t at = 0; at < keys.size(); at += 500) {
                std::vector<std::string> args{"MGET"};
                for (std::size_t i = at; i < std::min(keys.size(), at + 500); ++i) args.push_back(keys[i]);
                Reply r = redis_.command(args);
                if (r->type != REDIS_REPLY_ARRAY) throw RedisError("unexpected MGET reply");
                for (std::size_t i = 0; i < r->elements; ++i) {
                    if (r->element[i]->type != REDIS_REPLY_STRING) continue;  // gone meanwhile
                    auto e = deserialise(reply_string(r->element[i]));
                    if (e && matches(f, *e, now)) out.push_back(std::move(*e));
                }
            }
            std::sort(out.begin(), out.end(), [](const SuppressionEntry& a, const SuppressionEntry& b) {
                return std::tie(a.recipient, a.scope) < std::tie(b.recipient, b.scope);
            });
            return out;
        } catch (const std::exception& e) {
            if (error) *error = e.what();
            return std::nullopt;
        }
    }

    bool count_sender_fault(std::string_view sender_domain, std::string_view category, std::string* error) override {
        std::lock_guard lock(mutex_);
        try {
            redis_.command({"HINCRBY", std::string(kCounts),
                            "sender-fault|" + std::string(sender_domain) + "|" + std::string(category), "1"});
            return true;
        } catch (const std::exception& e) {
            if (error) *error = e.what();
            return false;
        }
    }

    std::optional<SuppressionStats> stats(std::int64_t now, std::string* error) override {
        auto entries = list(SuppressionFilter{}, now, error);
        if (!entries) return std::nullopt;
        std::lock_guard lock(mutex_);
        try {
            SuppressionStats st;
            std::map<std::string, std::uint64_t> by_reason;
            for (const SuppressionEntry& e : *entries) ++by_reason[e.category];
            st.entries_by_reason.assign(by_reason.begin(), by_reason.end());
            Reply r = redis_.command({"HGETALL", std::string(kCounts)});
            if (r->type != REDIS_REPLY_ARRAY) throw RedisError("unexpected HGETALL reply");
            std::map<std::string, std::uint64_t> adds, faults;
            for (std::size_t i = 0; i + 1 < r->elements; i += 2) {
                std::string name = reply_string(r->element[i]);
                std::uint64_t n = std::strtoull(reply_string(r->element[i + 1]).c_str(), nullptr, 10);
                if (name.starts_with("adds|")) adds[name.substr(5)] = n;
                else if (name.starts_with("sender-fault|")) faults[name.substr(13)] = n;
            }
            st.adds_by_source.assign(adds.begin(), adds.end());
            st.sender_faults.assign(faults.begin(), faults.end());
            return st;
        } catch (const std::exception& e) {
            if (error) *error = e.what();
            return std::nullopt;
        }
    }

    bool put_trace(std::string_view token, std::string_view scope, std::string_view recipient, std::int64_t expires,
                   std::string* error) override {
        std::lock_guard lock(mutex_);
        try {
            redis_.command({"SET", std::string(kTracePrefix) + std::string(token),
                            std::string(scope) + "\t" + std::string(recipient), "EXAT", std::to_string(expires)});
            return true;
        } catch (const std::exception& e) {
            if (error) *error = e.what();
            return false;
        }
    }

    std::optional<std::pair<std::string, std::string>> find_trace(std::string_view token, std::int64_t,
                                                                  std::string* error) override {
        std::lock_guard lock(mutex_);
        try {
            Reply r = redis_.command({"GET", std::string(kTracePrefix) + std::string(token)});
            if (r->type != REDIS_REPLY_STRING) return std::nullopt;
            std::string v = reply_string(r.get());
            auto tab = v.find('\t');
            if (tab == std::string::npos) return std::nullopt;
            return std::make_pair(v.substr(0, tab), v.substr(tab + 1));
        } catch (const std::exception& e) {
            if (error) *error = e.what();
            return std::nullopt;
        }
    }

    std::string describe() const override { return redis_.name(); }

private:
    static std::vector<std::string> set_command(const std::string& key, const SuppressionEntry& e) {
        if (e.expires > 0) return {"SET", key, serialise(e), "EXAT", std::to_string(e.expires)};
        return {"SET", key, serialise(e)};
    }

    // One round of WATCH, GET, merge, MULTI/EXEC; nothing when the entry changed meanwhile (EXEC
    // answered nil). Everything after the WATCH runs on the WATCH's connection only: on a new one
    // (a reconnect, a failover) the WATCH would not hold and the write would go unguarded, so a
    // lost connection is an error instead. The EXEC waits for a replica in Sentinel mode.
    std::optional<SuppressionEntry> try_record(const std::string& key, const SuppressionRecord& r) {
        redis_.command({"WATCH", key});
        Reply got = redis_.same_connection_command({"GET", key});
        std::optional<SuppressionEntry> existing;
        if (got->type == REDIS_REPLY_STRING) existing = deserialise(reply_string(got.get()));
        SuppressionEntry merged = merge_suppression(existing, r);
        bool newly = merged.active && !(existing && existing->active && !existing->expired(r.now));
        redis_.same_connection_command({"MULTI"});
        redis_.same_connection_command(set_command(key, merged));
        if (newly)
            redis_.same_connection_command(
                {"HINCRBY", std::string(kCounts), "adds|" + std::string(to_string(r.entry.source)), "1"});
        Reply done = redis_.same_connection_command({"EXEC"}, replicas_);
        if (done->type != REDIS_REPLY_ARRAY) return std::nullopt;  // nil: the entry changed meanwhile
        for (std::size_t i = 0; i < done->elements; ++i)
            if (done->element[i]->type == REDIS_REPLY_ERROR)
                throw RedisError("Redis: " + reply_string(done->element[i]));
        return merged;
    }

    // Leaves no MULTI or WATCH behind on the connection, if it is still open; never connects.
    void discard() noexcept {
        for (const char* cmd : {"DISCARD", "UNWATCH"}) {
            try {
                redis_.same_connection_command({cmd});
            } catch (...) {  // "DISCARD without MULTI", or no connection: nothing to clean
            }
        }
    }

    void scan(const std::string& match, std::vector<std::string>& out) {
        std::string cursor = "0";
        for (int round = 0; round < 1'000'000; ++round) {
            Reply r = redis_.command({"SCAN", cursor, "MATCH", match, "COUNT", "1000"});
            if (r->type != REDIS_REPLY_ARRAY || r->elements != 2 || r->element[0]->type != REDIS_REPLY_STRING ||
                r->element[1]->type != REDIS_REPLY_ARRAY)
                throw RedisError("unexpected SCAN reply");
            cursor = reply_string(r->element[0]);
            for (std::size_t i = 0; i < r->element[1]->elements; ++i)
                out.push_back(reply_string(r->element[1]->element[i]));
            if (cursor == "0") break;
        }
        std::sort(out.begin(), out.end());
        out.erase(std::unique(out.begin(), out.end()), out.end());
    }

    std::mutex mutex_;
    RedisConnection redis_;
    const int replicas_;  // the replicas an entry's write waits for: 1 in Sentinel mode, else 0
};

}  // namespace

std::unique_ptr<SuppressionStore> make_sqlite_suppression_store(const std::string& path,
                                                                std::chrono::milliseconds timeout);

std::unique_ptr<SuppressionStore> open_suppression_store(const QuotaStoreSpec& spec, std::chrono::milliseconds timeout,
                                                         const RedisCredentials& credentials,
                                                         const RedisCredentials& sentinel_credentials) {
    if (spec.kind != QuotaStoreSpec::Kind::sqlite)
        return std::make_unique<RedisSuppressionStore>(
            redis_endpoint(spec, credentials, sentinel_credentials, timeout));
    return make_sqlite_suppression_store(spec.path, timeout);
}

std::unique_ptr<SuppressionStore> open_suppression_store(const GlobalSettings& g) {
    std::string why;
    std::optional<QuotaStoreSpec> spec = parse_quota_store(g.suppression_store, &why);  // checked by the conf
    if (!spec) throw std::runtime_error(why);
    return open_suppression_store(*spec, g.suppression_store_timeout, g.suppression_store_credentials,
                                  g.suppression_store_sentinel_credentials);
}

}  // namespace preflight
