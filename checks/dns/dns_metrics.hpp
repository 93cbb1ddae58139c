// What the DNS cache (CachingResolver) counts for /metrics. One DnsMetrics lives as long as the
// process and is handed to every CachingResolver it makes (DnsCacheOptions::metrics), so the
// counters run on across a reload that replaces the resolver.
#pragma once

#include <array>
#include <cstddef>
#include <functional>

#include "dns.hpp"
#include "metrics.hpp"

namespace preflight {

struct DnsMetrics {
    // How a cached answer is counted: records (positive), NXDOMAIN or NODATA (negative), or a
    // remembered SERVFAIL/timeout/garbage (failure).
    enum class HitKind { positive, negative, failure };
    static constexpr std::size_t kHitKinds = 3;
    static constexpr std::size_t kStatuses = 5;  // DnsStatus::ok .. bad_answer

    metrics::Counter queries;  // every lookup
    std::array<metrics::Counter, kHitKinds> hits;
    metrics::Counter misses;     // this caller asked upstream
    metrics::Counter coalesced;  // waited for an identical query in flight
    metrics::Gauge coalesced_waiting;
    metrics::Counter evictions;
    std::array<metrics::Counter, kStatuses> upstream;  // by DnsStatus
    metrics::Gauge upstream_in_flight;
    // From a fraction of a millisecond (a local resolver's cache) to DnsTimeout's maximum.
    metrics::Histogram upstream_seconds{0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1,
                                        0.25,   0.5,   1,      2.5,   5,    10,    30,   60};

    static HitKind hit_kind(const DnsAnswer& a);
    void count_hit(const DnsAnswer& a) { hits[static_cast<std::size_t>(hit_kind(a))].inc(); }
    void count_upstream(DnsStatus s) {
        auto i = static_cast<std::size_t>(s);
        if (i < kStatuses) upstream[i].inc();
    }

    // Registers the preflight_dns_* families; entries reads the current cache size.
    void register_with(metrics::Registry& r, std::function<double()> entries) const;
};

}  // namespace preflight
