#include "dns_cache.hpp"

#include "ascii.hpp"
#include <cctype>
#include <optional>

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

std::shared_ptr<const DnsAnswer> CachingResolver::query(std::string_view name, std::uint16_t type) {
    ++queries_;
    DnsMetrics* const m = opts_.metrics;
    if (m) m->queries.inc();
    const std::string key = cache_key(name, type);
    std::promise<Answer> promise;
    {
        std::unique_lock lock(mutex_);
        if (auto it = entries_.find(key); it != entries_.end()) {
            if (Clock::now() < it->second.expires) {
                lru_.splice(lru_.begin(), lru_, it->second.lru);
                ++hits_;
                if (m) m->count_hit(*it->second.answer);
                return it->second.answer;
            }
            lru_.erase(it->second.lru);
            entries_.erase(it);
            size_ = entries_.size();
        }
        if (auto it = in_flight_.find(key); it != in_flight_.end()) {
            std::shared_future<Answer> fut = it->second;
            lock.unlock();
            ++coalesced_;
            std::optional<metrics::GaugeHold> waiting;
            if (m) {
                m->coalesced.inc();
                waiting.emplace(m->coalesced_waiting);
            }
            if (fut.wait_for(opts_.coalesce_wait) != std::future_status::ready) return failed(DnsStatus::timeout);
            return fut.get();
        }
        in_flight_.emplace(key, promise.get_future().share());
        ++misses_;
    }

    ++upstream_queries_;
    Answer answer;
    {
        std::optional<metrics::GaugeHold> in_flight;
        if (m) {
            m->misses.inc();
            in_flight.emplace(m->upstream_in_flight);
        }
        const auto sent = Clock::now();
        try {
            answer = upstream_.query(key_name(key), type);
        } catch (...) {
            answer = nullptr;
        }
        if (m) m->upstream_seconds.observe(Clock::now() - sent);
    }
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
        store_locked(key, cached, ttl);
        in_flight_.erase(key);
    }
    promise.set_value(std::move(cached));
    return answer;
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
