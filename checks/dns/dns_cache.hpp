// CachingResolver: the thread-safe TTL cache in front of the one DNS path (normally in front
// of an LdnsResolver). Every check, libspf2 and libopendkim ask through it, so the second
// message of a domain costs no DNS traffic.
//
// Key: (name lower case without trailing dot, type). Rules:
//  - ok answers (records or NODATA) and nxdomain are kept for the answer's ttl (which the
//    resolver derived per RFC 2308 for negative answers); ttl 0 is not cached;
//  - servfail, timeout and bad_answer are kept for failure_ttl (default 5 s): long enough that
//    a burst of messages for a domain whose DNS is down does not each wait DnsTimeout on the
//    network (RFC 2308 section 7 allows caching server failures, for at most 5 minutes), short
//    enough that recovery is seen at once by a retrying client (Postfix retries after minutes);
//  - identical queries in flight are coalesced: later callers wait for the first caller's
//    answer (bounded by coalesce_wait, after which they get a timeout answer);
//  - at most max_entries answers, least recently used evicted first (0 = no caching, but
//    coalescing still happens).
// Cached answers are returned with from_cache = true and elapsed_ms = 0; their ttl is the ttl
// at the time they were fetched.
#pragma once

#include "dns.hpp"
#include "dns_metrics.hpp"

#include <atomic>
#include <chrono>
#include <cstdint>
#include <future>
#include <list>
#include <memory>
#include <mutex>
#include <string>
#include <unordered_map>

namespace preflight {

struct DnsCacheStats {
    std::uint64_t queries = 0;           // every query() call
    std::uint64_t hits = 0;              // answered from the cache
    std::uint64_t misses = 0;            // went upstream (this caller asked the network)
    std::uint64_t coalesced = 0;         // waited for an identical query in flight
    std::uint64_t upstream_queries = 0;  // queries passed to the upstream resolver
    std::uint64_t evictions = 0;         // entries dropped to stay within max_entries
    std::uint64_t entries = 0;           // entries held now
};

struct DnsCacheOptions {
    std::chrono::milliseconds failure_ttl{5000};
    std::chrono::milliseconds coalesce_wait{30000};  // set above the upstream's DnsTimeout
    DnsMetrics* metrics = nullptr;                   // also counted there when set (outlives the resolver)
};

class CachingResolver final : public Resolver {
public:
    CachingResolver(Resolver& upstream, std::size_t max_entries, DnsCacheOptions opts = {});
    CachingResolver(std::unique_ptr<Resolver> upstream, std::size_t max_entries, DnsCacheOptions opts = {});
    ~CachingResolver() override;
    CachingResolver(const CachingResolver&) = delete;
    CachingResolver& operator=(const CachingResolver&) = delete;

    std::shared_ptr<const DnsAnswer> query(std::string_view name, std::uint16_t type) override;
    // Cached answers at once, lookups in flight joined, the rest passed upstream in one batch
    // (Resolver::query_all); a name asked twice in one batch goes upstream once.
    std::vector<std::shared_ptr<const DnsAnswer>> query_all(std::span<const DnsQuestion> questions) override;

    // Each counter is read atomically (the set as a whole is not a snapshot).
    DnsCacheStats stats() const;
    void clear();  // drops every cached answer (in-flight queries complete normally)

private:
    using Answer = std::shared_ptr<const DnsAnswer>;
    struct Entry {
        Answer answer;
        std::chrono::steady_clock::time_point expires;
        std::list<std::string>::iterator lru;
    };

    // What the cache can say about one question before the network is asked.
    struct Claim {
        std::string key;
        Answer answer;                       // set: a hit
        std::shared_future<Answer> waiting;  // valid: joined a lookup in flight
        std::promise<Answer> promise;        // neither: this caller asks upstream and fulfils it
    };

    void store_locked(const std::string& key, const Answer& cached, std::chrono::steady_clock::duration ttl);
    Claim claim(std::string_view name, std::uint16_t type);
    Answer wait_for(Claim& c);
    Answer complete(Claim& c, Answer answer);
    std::unique_ptr<Resolver> owned_;
    Resolver& upstream_;
    const std::size_t max_entries_;
    const DnsCacheOptions opts_;

    mutable std::mutex mutex_;
    std::unordered_map<std::string, Entry> entries_;
    std::list<std::string> lru_;  // front = most recently used
    std::unordered_map<std::string, std::shared_future<Answer>> in_flight_;

    std::atomic<std::uint64_t> queries_{0}, hits_{0}, misses_{0}, coalesced_{0}, upstream_queries_{0}, evictions_{0},
        size_{0};
};

}  // namespace preflight
