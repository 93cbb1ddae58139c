// The cluster quota store: Redis through hiredis (QuotaStore redis://HOST[:PORT][/DB], or
// redis-sentinel://SENTINELS/MASTER[/DB]); the connection (AUTH, Sentinel, timeouts, reconnects)
// is checks/store/redis_connection.
//
// Each counter is a Redis hash "pfq:<counter key>" of bucket index -> count. reserve() is one
// Lua script (EVALSHA): Redis runs a script alone, so summing the live buckets, comparing with
// the limits and adding to all counters is atomic against every relay using the same Redis; no
// relay can add between another's check and add, which is what keeps the total exact under
// concurrency. Buckets that left the window are deleted by the script; each hash carries a TTL
// of one window plus one bucket, renewed on every add, so a subject that stops sending leaves
// nothing behind. The relays send their own clock (bucket edges move by the clocks' skew).
//
// Failure modes: no connection, a timeout (QuotaStoreTimeout, for connect and every reply), or
// an error reply give QuotaResult::ok == false with the reason. After a failed connect the next
// attempt waits a second, so a dead Redis costs a transaction nothing but the error. One
// connection per process, used under a mutex; a broken one is dropped and reopened.
//
// Sentinel: Redis replicates asynchronously, so a count the master acknowledged may be missing
// on the replica that a failover promotes. A reservation is therefore acknowledged only when at
// least one replica holds it (WAIT 1, within the timeout); otherwise it is a store error, the
// recipient is tempfailed and the count, if it was made, stays on the safe side.
#include <hiredis/hiredis.h>

#include <algorithm>
#include <chrono>
#include <mutex>

#include "quota.hpp"
#include "redis_connection.hpp"

namespace preflight {
namespace {

using Reply = RedisReply;

constexpr std::string_view kPrefix = "pfq:";

// KEYS: the counters. ARGV[1] now in ms, ARGV[2] force (1/0), then per counter limit, window
// seconds, amount, period end (unix s; 0: a sliding window). Returns {over (1-based, 0: none),
// retry seconds, counted, used..., bucket...}.
//
// A plan period (week, month) is the one field named by the period's end: its count is the
// usage, fields of ended periods are deleted, and the key expires kPeriodKeepSeconds after the
// period ends (PEXPIREAT, only ever moved later, so a relay whose clock lags cannot shorten
// the life of a period another relay has started).
constexpr const char* kReserveScript = R"lua(
local now = tonumber(ARGV[1]) / 1000
local force = ARGV[2] == '1'
local keep = tonumber(ARGV[3])
local n = #KEYS
local used, cur = {}, {}
local over, retry = 0, 0
for i = 1, n do
  local limit, win, amt, pend = tonumber(ARGV[4*i]), tonumber(ARGV[4*i+1]), tonumber(ARGV[4*i+2]), tonumber(ARGV[4*i+3])
  if pend > 0 then
    cur[i] = pend
    local h = redis.call('HGETALL', KEYS[i])
    local sum = 0
    for j = 1, #h, 2 do
      local b = tonumber(h[j])
      if b < pend then redis.call('HDEL', KEYS[i], h[j]) elseif b == pend then sum = tonumber(h[j+1]) end
    end
    used[i] = sum
    if over == 0 and amt > 0 and sum + amt > limit then
      over = i
      retry = math.max(1, pend - now)
    end
  else
  local g = win / 60
  local c = math.floor(now / g)
  cur[i] = c
  local h = redis.call('HGETALL', KEYS[i])
  local sum, live = 0, {}
  for j = 1, #h, 2 do
    local b = tonumber(h[j])
    if b <= c - 60 then
      redis.call('HDEL', KEYS[i], h[j])
    else
      local v = tonumber(h[j+1])
      sum = sum + v
      live[#live+1] = {b, v}
    end
  end
  used[i] = sum
  if over == 0 and amt > 0 and sum + amt > limit then
    over = i
    table.sort(live, function(x, y) return x[1] < y[1] end)
    local excess, freed = sum + amt - limit, 0
    retry = win
    for _, e in ipairs(live) do
      freed = freed + e[2]
      if freed >= excess then retry = (e[1] + 60) * g - now; break end
    end
  end
  end
end
local counted = 0
if over == 0 or force then
  counted = 1
  for i = 1, n do
    local win, amt, pend = tonumber(ARGV[4*i+1]), tonumber(ARGV[4*i+2]), tonumber(ARGV[4*i+3])
    if amt > 0 then
      redis.call('HINCRBY', KEYS[i], string.format('%d', cur[i]), amt)
      if pend > 0 then
        local until_ms = (pend + keep) * 1000
        local pttl = redis.call('PTTL', KEYS[i])
        if pttl < 0 or now * 1000 + pttl < until_ms then redis.call('PEXPIREAT', KEYS[i], until_ms) end
      else
        redis.call('EXPIRE', KEYS[i], win + win / 60 + 1)
      end
    end
  end
end
local out = {over, math.ceil(retry), counted}
for i = 1, n do out[#out+1] = used[i] end
for i = 1, n do out[#out+1] = cur[i] end
return out
)lua";

// KEYS: counters; ARGV: bucket, amount per counter. Only buckets still present are touched.
constexpr const char* kReleaseScript = R"lua(
for i = 1, #KEYS do
  local b, amt = ARGV[2*i-1], tonumber(ARGV[2*i])
  if redis.call('HEXISTS', KEYS[i], b) == 1 then
    if redis.call('HINCRBY', KEYS[i], b, -amt) <= 0 then redis.call('HDEL', KEYS[i], b) end
  end
end
return 1
)lua";

class RedisQuotaStore final : public QuotaStore {
public:
    explicit RedisQuotaStore(RedisEndpoint endpoint) : redis_(std::move(endpoint)) {}

    QuotaResult reserve(std::span<const QuotaCounter> counters, bool force, std::int64_t now_ms) override {
        QuotaResult r;
        std::vector<std::string> args;
        args.reserve(4 + 5 * counters.size());
        args.emplace_back(std::to_string(counters.size()));
        for (const QuotaCounter& c : counters) args.push_back(key(c.key));
        args.push_back(std::to_string(now_ms));
        args.emplace_back(force ? "1" : "0");
        args.push_back(std::to_string(kPeriodKeepSeconds));
        for (const QuotaCounter& c : counters) {
            args.push_back(std::to_string(c.limit));
            args.push_back(std::to_string(window_seconds(c.window)));
            args.push_back(std::to_string(c.amount));
            args.push_back(std::to_string(c.period_end_s));
        }
        std::lock_guard lock(mutex_);
        try {
            // Sentinel: acknowledged only once a replica holds it (see the top of this file).
            Reply reply = eval(reserve_sha_, kReserveScript, args, redis_.sentinel_mode() ? 1 : 0);
            const redisReply* a = reply.get();
            std::size_t n = counters.size();
            if (a->type != REDIS_REPLY_ARRAY || a->elements != 3 + 2 * n) throw RedisError("unexpected script reply");
            auto integer = [&](std::size_t i) {
                const redisReply* e = a->element[i];
                if (e->type != REDIS_REPLY_INTEGER) throw RedisError("unexpected script reply");
                return e->integer;
            };
            r.over = static_cast<int>(integer(0)) - 1;
            r.retry_seconds = integer(1);
            r.counted = integer(2) == 1;
            for (std::size_t i = 0; i < n; ++i)
                r.used.push_back(static_cast<std::uint64_t>(std::max(0LL, integer(3 + i))));
            for (std::size_t i = 0; i < n; ++i) r.buckets.push_back(integer(3 + n + i));
        } catch (const std::exception& e) {
            return QuotaResult::failure(e.what());
        }
        return r;
    }

    bool release(std::span<const QuotaHeld> held, std::string* error) noexcept override {
        try {
            std::vector<std::string> args;
            args.emplace_back(std::to_string(held.size()));
            for (const QuotaHeld& h : held) args.push_back(key(h.key));
            for (const QuotaHeld& h : held) {
                args.push_back(std::to_string(h.bucket));
                args.push_back(std::to_string(h.amount));
            }
            std::lock_guard lock(mutex_);
            eval(release_sha_, kReleaseScript, args);
            return true;
        } catch (const std::exception& e) {
            if (error) *error = e.what();
        } catch (...) {
            if (error) *error = "unknown error";
        }
        return false;
    }

    std::optional<std::vector<std::string>> keys(std::string* error) override {
        std::lock_guard lock(mutex_);
        try {
            std::vector<std::string> out;
            std::string cursor = "0";
            std::string match = std::string(kPrefix) + "*";
            for (int round = 0; round < 100'000; ++round) {
                Reply r = redis_.command({"SCAN", cursor, "MATCH", match, "COUNT", "1000"});
                if (r->type != REDIS_REPLY_ARRAY || r->elements != 2 || r->element[0]->type != REDIS_REPLY_STRING ||
                    r->element[1]->type != REDIS_REPLY_ARRAY)
                    throw RedisError("unexpected SCAN reply");
                cursor.assign(r->element[0]->str, r->element[0]->len);
                for (std::size_t i = 0; i < r->element[1]->elements; ++i) {
                    const redisReply* k = r->element[1]->element[i];
                    if (k->type == REDIS_REPLY_STRING && k->len > kPrefix.size())
                        out.emplace_back(k->str + kPrefix.size(), k->len - kPrefix.size());
                }
                if (cursor == "0") break;
            }
            std::sort(out.begin(), out.end());
            out.erase(std::unique(out.begin(), out.end()), out.end());
            return out;
        } catch (const std::exception& e) {
            if (error) *error = e.what();
            return std::nullopt;
        }
    }

    std::string describe() const override { return redis_.name(); }

private:
    static std::string key(const std::string& counter) {
        std::string k(kPrefix);
        k += counter;
        return k;
    }

    // EVALSHA of a script loaded once per connection; loaded again after NOSCRIPT (a restarted
    // or flushed Redis, a new master). args: numkeys, keys..., argv...
    Reply eval(std::string& sha, const char* script, const std::vector<std::string>& args, int replicas = 0) {
        for (int attempt = 0; attempt < 2; ++attempt) {
            if (sha.empty() || loaded_on_ != redis_.connection_id()) {
                Reply loaded = redis_.command({"SCRIPT", "LOAD", script});
                if (loaded->type != REDIS_REPLY_STRING) throw RedisError("unexpected SCRIPT LOAD reply");
                sha.assign(loaded->str, loaded->len);
                loaded_on_ = redis_.connection_id();
            }
            std::vector<std::string> full{"EVALSHA", sha};
            full.insert(full.end(), args.begin(), args.end());
            try {
                return redis_.replicated_command(full, replicas);
            } catch (const RedisError& e) {
                if (std::string_view(e.what()).find("NOSCRIPT") == std::string_view::npos || attempt == 1) throw;
                sha.clear();
            }
        }
        throw RedisError("script could not be loaded");
    }

    std::mutex mutex_;
    RedisConnection redis_;
    std::string reserve_sha_, release_sha_;
    std::uint64_t loaded_on_ = 0;  // the connection the scripts were loaded on
};

}  // namespace

std::unique_ptr<QuotaStore> make_sqlite_quota_store(const std::string& path, std::chrono::milliseconds timeout);

std::unique_ptr<QuotaStore> open_quota_store(const QuotaStoreSpec& spec, std::chrono::milliseconds timeout,
                                             const RedisCredentials& credentials,
                                             const RedisCredentials& sentinel_credentials) {
    if (spec.kind != QuotaStoreSpec::Kind::sqlite)
        return std::make_unique<RedisQuotaStore>(redis_endpoint(spec, credentials, sentinel_credentials, timeout));
    return make_sqlite_quota_store(spec.path, timeout);
}

std::unique_ptr<QuotaStore> open_quota_store(const GlobalSettings& g) {
    return open_quota_store(g.quota_store, g.quota_store_timeout, g.quota_store_credentials,
                            g.quota_store_sentinel_credentials);
}

}  // namespace preflight
