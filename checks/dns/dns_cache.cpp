#include "dns_cache.hpp"

#include "ascii.hpp"
#include <cctype>
#include <optional>
#include <vector>

namespace preflight {

namespace {

using Clock = std::chrono::steady_clock;

std::string cache_key(std::string_view name, std::uint16_t type) {
    std::string key;
    key.reserve(name.size() + 6);
    for (char c : name) key += ascii::lower(c);
    if (!key.empty() && key.back() == '.') key.pop_back();
    key += '/';
    key += std::to_string(type);
    return key;
}

std::string_view key_name(const std::string& key) { return std::string_view(key).substr(0, key.rfind('/')); }

std::shared_ptr<const DnsAnswer> failed(DnsStatus st) {
    auto a = std::make_shared<DnsAnswer>();
    a->status = st;
    return a;
}

}  // namespace

CachingResolver::CachingResolver(Resolver& upstream, std::size_t max_entries, DnsCacheOptions opts)
    : upstream_(upstream), max_entries_(max_entries), opts_(opts) {}

CachingResolver::CachingResolver(std::unique_ptr<Resolver> upstream, std::size_t max_entries, DnsCacheOptions opts)
    : owned_(std::move(upstream)), upstream_(*owned_), max_entries_(max_entries), opts_(opts) {}

CachingResolver::~CachingResolver() = default;

void CachingResolver::store_locked(const std::string& key, const Answer& cached, Clock::duration ttl) {
    if (max_entries_ == 0 || ttl <= Clock::duration::zero()) return;
    const auto expires = Clock::now() + ttl;
    if (auto it = entries_.find(key); it != entries_.end()) {
        it->second.answer = cached;
        it->second.expires = expires;
        lru_.splice(lru_.begin(), lru_, it->second.lru);
        return;
    }
    // Bounded: evict from the cold end until there is room (at most size - max + 1 steps).
    while (entries_.size() >= max_entries_ && !lru_.empty()) {
        entries_.erase(lru_.back());
        lru_.pop_back();
        ++evictions_;
        if (opts_.metrics) opts_.metrics->evictions.inc();
    }
    lru_.push_front(key);
    entries_.emplace(key, Entry{cached, expires, lru_.begin()});
    size_ = entries_.size();
}

CachingResolver::Claim CachingResolver::claim(std::string_view name, std::uint16_t type) {
    ++queries_;
    DnsMetrics* const m = opts_.metrics;
    if (m) m->queries.inc();
    Claim c;
    c.key = cache_key(name, type);
    std::lock_guard lock(mutex_);
    if (auto it = entries_.find(c.key); it != entries_.end()) {
        if (Clock::now() < it->second.expires) {
            lru_.splice(lru_.begin(), lru_, it->second.lru);
            ++hits_;
            if (m) m->count_hit(*it->second.answer);
            c.answer = it->second.answer;
            return c;
        }
        lru_.erase(it->second.lru);
        entries_.erase(it);
        size_ = entries_.size();
    }
    if (auto it = in_flight_.find(c.key); it != in_flight_.end()) {
        c.waiting = it->second;
        return c;
    }
    in_flight_.emplace(c.key, c.promise.get_future().share());
    ++misses_;
    ++upstream_queries_;
    if (m) m->misses.inc();
    return c;
}

CachingResolver::Answer CachingResolver::wait_for(Claim& c) {
    ++coalesced_;
    DnsMetrics* const m = opts_.metrics;
    std::optional<metrics::GaugeHold> waiting;
    if (m) {
        m->coalesced.inc();
        waiting.emplace(m->coalesced_waiting);
    }
    if (c.waiting.wait_for(opts_.coalesce_wait) != std::future_status::ready) return failed(DnsStatus::timeout);
    return c.waiting.get();
}

// Stores the upstream answer, hands the shared copy to the callers waiting for it, and
// returns the answer as fetched.
CachingResolver::Answer CachingResolver::complete(Claim& c, Answer answer) {
    DnsMetrics* const m = opts_.metrics;
    if (!answer) answer = failed(DnsStatus::bad_answer);
    if (m) m->count_upstream(answer->status);

    // The copy that is shared from now on says where it came from; made once, not per hit.
    auto cached = std::make_shared<DnsAnswer>(*answer);
    cached->from_cache = true;
    cached->elapsed_ms = 0;
    Clock::duration ttl = opts_.failure_ttl;
    if (answer->status == DnsStatus::ok || answer->status == DnsStatus::nxdomain)
        ttl = std::chrono::seconds(answer->ttl);
    {
        std::lock_guard lock(mutex_);
        store_locked(c.key, cached, ttl);
        in_flight_.erase(c.key);
    }
    c.promise.set_value(std::move(cached));
    return answer;
}

// One question: query_all's steps without its vectors (a hit is the hot path of every check).
std::shared_ptr<const DnsAnswer> CachingResolver::query(std::string_view name, std::uint16_t type) {
    Claim c = claim(name, type);
    if (c.answer) return c.answer;
    if (c.waiting.valid()) return wait_for(c);
    DnsMetrics* const m = opts_.metrics;
    Answer answer;
    {
        std::optional<metrics::GaugeHold> in_flight;
        if (m) in_flight.emplace(m->upstream_in_flight);
        const auto sent = Clock::now();
        try {
            answer = upstream_.query(key_name(c.key), type);
        } catch (...) {
            answer = nullptr;
        }
        if (m) m->upstream_seconds.observe(Clock::now() - sent);
    }
    return complete(c, std::move(answer));
}

std::vector<std::shared_ptr<const DnsAnswer>> CachingResolver::query_all(std::span<const DnsQuestion> questions) {
    std::vector<Claim> claims;
    claims.reserve(questions.size());
    std::vector<DnsQuestion> upstream;  // the questions this call owns, in claim order
    std::vector<std::size_t> owned;     // their indices in claims
    for (const DnsQuestion& q : questions) {
        claims.push_back(claim(q.name, q.type));
        Claim& c = claims.back();
        if (!c.answer && !c.waiting.valid()) {
            upstream.push_back({std::string(key_name(c.key)), q.type});
            owned.push_back(claims.size() - 1);
        }
    }
    if (!upstream.empty()) {
        DnsMetrics* const m = opts_.metrics;
        std::vector<std::optional<metrics::GaugeHold>> in_flight(m ? upstream.size() : 0);
        for (auto& h : in_flight) h.emplace(m->upstream_in_flight);
        const auto sent = Clock::now();
        std::vector<Answer> got;
        try {
            got = upstream_.query_all(upstream);
        } catch (...) {
            got.clear();
        }
        in_flight.clear();
        for (std::size_t k = 0; k < owned.size(); ++k) {
            if (m) m->upstream_seconds.observe(Clock::now() - sent);
            claims[owned[k]].answer = complete(claims[owned[k]], k < got.size() ? got[k] : nullptr);
        }
    }
    std::vector<Answer> answers;
    answers.reserve(claims.size());
    for (Claim& c : claims) answers.push_back(c.answer ? c.answer : wait_for(c));
    return answers;
}

DnsCacheStats CachingResolver::stats() const {
    DnsCacheStats s;
    s.queries = queries_.load();
    s.hits = hits_.load();
    s.misses = misses_.load();
    s.coalesced = coalesced_.load();
    s.upstream_queries = upstream_queries_.load();
    s.evictions = evictions_.load();
    s.entries = size_.load();
    return s;
}

void CachingResolver::clear() {
    std::lock_guard lock(mutex_);
    entries_.clear();
    lru_.clear();
    size_ = 0;
}

}  // namespace preflight
