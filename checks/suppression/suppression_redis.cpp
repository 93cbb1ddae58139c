// The cluster suppression store: Redis through hiredis (SuppressionStore redis://HOST[:PORT][/DB]).
//
// An entry is one string "pfs:e:<scope>|<recipient>" holding its fields tab-separated (every text
// field is sanitised printable ASCII, so no tab or newline inside), with EXPIREAT at its expiry,
// so Redis forgets expired entries by itself. The RCPT TO lookup is one MGET of the domain's key
// and the "*" key: one round trip. record() reads, merges (merge_suppression(), the same rule as
// SQLite) and writes under WATCH/MULTI/EXEC, retried when another relay wrote the entry in
// between. Counters: hash "pfs:counts" ("adds|SOURCE", "sender-fault|DOMAIN|CATEGORY"). Trace
// tokens: "pfs:t:<token>" = "<scope>\t<recipient>" with EXPIREAT.
//
// The connection is handled as the quota store's (quota_redis.cpp): connect and every reply
// bounded by SuppressionStoreTimeout, a broken connection dropped and reopened, and after a
// failed connect the next attempt waits a second, so a dead Redis costs a lookup only the error.
#include <hiredis/hiredis.h>
#include <sys/time.h>

#include <algorithm>
#include <charconv>
#include <map>
#include <mutex>

#include "suppression.hpp"

namespace preflight {
namespace {

struct ContextFree {
    void operator()(redisContext* c) const noexcept { redisFree(c); }
};
struct ReplyFree {
    void operator()(redisReply* r) const noexcept { freeReplyObject(r); }
};
using Context = std::unique_ptr<redisContext, ContextFree>;
using Reply = std::unique_ptr<redisReply, ReplyFree>;

constexpr std::string_view kEntryPrefix = "pfs:e:";
constexpr std::string_view kTracePrefix = "pfs:t:";
constexpr std::string_view kCounts = "pfs:counts";
constexpr int kWatchAttempts = 20;

struct RedisError : std::runtime_error {
    using std::runtime_error::runtime_error;
};

timeval to_timeval(std::chrono::milliseconds d) {
    timeval tv{};
    tv.tv_sec = static_cast<time_t>(d.count() / 1000);
    tv.tv_usec = static_cast<suseconds_t>((d.count() % 1000) * 1000);
    return tv;
}

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
    RedisSuppressionStore(QuotaStoreSpec spec, std::chrono::milliseconds timeout)
        : spec_(std::move(spec)), timeout_(timeout) {}

    SuppressionLookup lookup(std::string_view scope, std::string_view recipient, std::int64_t now) override {
        SuppressionLookup out;
        std::lock_guard lock(mutex_);
        try {
            Reply r = command({"MGET", entry_key(scope, recipient), entry_key(kGlobalScope, recipient)});
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
            for (int attempt = 0; attempt < kWatchAttempts; ++attempt) {
                command({"WATCH", key});
                Reply got = command({"GET", key});
                std::optional<SuppressionEntry> existing;
                if (got->type == REDIS_REPLY_STRING) existing = deserialise(reply_string(got.get()));
                SuppressionEntry merged = merge_suppression(existing, r);
                bool newly = merged.active && !(existing && existing->active && !existing->expired(r.now));
                command({"MULTI"});
                write(key, merged);
                if (newly)
                    command({"HINCRBY", std::string(kCounts), "adds|" + std::string(to_string(r.entry.source)), "1"});
                Reply done = command({"EXEC"});
                if (done->type == REDIS_REPLY_ARRAY) return merged;  // nil: the entry changed meanwhile
            }
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
            write(entry_key(e.scope, e.recipient), e);
            command({"HINCRBY", std::string(kCounts), "adds|" + std::string(to_string(e.source)), "1"});
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
                Reply r = command({"DEL", k});
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
                Reply r = command(args);
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
            command({"HINCRBY", std::string(kCounts),
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
            Reply r = command({"HGETALL", std::string(kCounts)});
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
            command({"SET", std::string(kTracePrefix) + std::string(token),
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
            Reply r = command({"GET", std::string(kTracePrefix) + std::string(token)});
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

    std::string describe() const override { return spec_.to_string(); }

private:
    void write(const std::string& key, const SuppressionEntry& e) {
        if (e.expires > 0) command({"SET", key, serialise(e), "EXAT", std::to_string(e.expires)});
        else command({"SET", key, serialise(e)});
    }

    // Leaves a MULTI or WATCH behind on no connection: the next command starts clean.
    void discard() noexcept {
        try {
            if (ctx_) command({"DISCARD"});
        } catch (...) {}
        try {
            if (ctx_) command({"UNWATCH"});
        } catch (...) {}
    }

    void scan(const std::string& match, std::vector<std::string>& out) {
        std::string cursor = "0";
        for (int round = 0; round < 1'000'000; ++round) {
            Reply r = command({"SCAN", cursor, "MATCH", match, "COUNT", "1000"});
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

    // Connects when there is no usable connection; throws when it cannot.
    redisContext* connection() {
        if (ctx_) return ctx_.get();
        auto now = std::chrono::steady_clock::now();
        if (now < next_attempt_) throw RedisError(spec_.to_string() + " unreachable (" + last_error_ + ")");
        next_attempt_ = now + std::chrono::seconds(1);
        Context c(redisConnectWithTimeout(spec_.host.c_str(), spec_.port, to_timeval(timeout_)));
        if (!c || c->err || redisSetTimeout(c.get(), to_timeval(timeout_)) != REDIS_OK) {
            last_error_ = c ? c->errstr : "out of memory";
            throw RedisError(spec_.to_string() + ": " + last_error_);
        }
        ctx_ = std::move(c);
        if (spec_.db != 0) command({"SELECT", std::to_string(spec_.db)});
        next_attempt_ = {};
        return ctx_.get();
    }

    // One command; a transport error drops the connection, an error reply throws with its text.
    Reply command(const std::vector<std::string>& args) {
        redisContext* c = connection();
        std::vector<const char*> argv;
        std::vector<std::size_t> lens;
        for (const std::string& a : args) {
            argv.push_back(a.data());
            lens.push_back(a.size());
        }
        Reply r(static_cast<redisReply*>(redisCommandArgv(c, static_cast<int>(argv.size()), argv.data(), lens.data())));
        if (!r) {
            last_error_ = c->err ? c->errstr : "no reply";
            ctx_.reset();  // the stream is out of step now: start afresh next time
            next_attempt_ = std::chrono::steady_clock::now() + std::chrono::seconds(1);
            throw RedisError(spec_.to_string() + ": " + last_error_);
        }
        if (r->type == REDIS_REPLY_ERROR) throw RedisError("Redis: " + reply_string(r.get()));
        return r;
    }

    QuotaStoreSpec spec_;
    std::chrono::milliseconds timeout_;
    std::mutex mutex_;
    Context ctx_;
    std::string last_error_;
    std::chrono::steady_clock::time_point next_attempt_{};
};

}  // namespace

std::unique_ptr<SuppressionStore> make_sqlite_suppression_store(const std::string& path,
                                                                std::chrono::milliseconds timeout);

std::unique_ptr<SuppressionStore> open_suppression_store(const QuotaStoreSpec& spec,
                                                         std::chrono::milliseconds timeout) {
    if (spec.kind == QuotaStoreSpec::Kind::redis) return std::make_unique<RedisSuppressionStore>(spec, timeout);
    return make_sqlite_suppression_store(spec.path, timeout);
}

}  // namespace preflight
