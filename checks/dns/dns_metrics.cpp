#include "dns_metrics.hpp"

#include <string>

namespace preflight {

DnsMetrics::HitKind DnsMetrics::hit_kind(const DnsAnswer& a) {
    switch (a.status) {
    case DnsStatus::ok: return a.records.empty() && a.mx.empty() ? HitKind::negative : HitKind::positive;
    case DnsStatus::nxdomain: return HitKind::negative;
    default: return HitKind::failure;
    }
}

void DnsMetrics::register_with(metrics::Registry& r, std::function<double()> entries) const {
    r.add("preflight_dns_queries_total", "DNS lookups by the checks (SPF, DKIM, sender domain), cached or not.",
          queries);
    static constexpr const char* kKinds[kHitKinds] = {"positive", "negative", "failure"};
    for (std::size_t i = 0; i < kHitKinds; ++i)
        r.add("preflight_dns_cache_hits_total",
              "DNS lookups answered from the cache, by answer: records, NXDOMAIN/NODATA, a remembered failure.",
              hits[i], {{"answer", kKinds[i]}});
    r.add("preflight_dns_cache_misses_total", "DNS lookups that went to the nameservers.", misses);
    r.add("preflight_dns_coalesced_total", "DNS lookups that waited for an identical query in flight.", coalesced);
    r.add("preflight_dns_coalesced_waiting", "DNS lookups waiting now for an identical query in flight.",
          coalesced_waiting);
    r.add("preflight_dns_cache_evictions_total", "DNS answers dropped to keep the cache within DnsCacheSize.",
          evictions);
    r.add_callback("preflight_dns_cache_entries", "DNS answers held in the cache now.", metrics::Type::gauge,
                   std::move(entries));
    for (std::size_t i = 0; i < kStatuses; ++i)
        r.add("preflight_dns_upstream_queries_total", "DNS queries sent to the nameservers, by outcome.", upstream[i],
              {{"status", std::string(to_string(static_cast<DnsStatus>(i)))}});
    r.add("preflight_dns_upstream_in_flight", "DNS queries waiting for the nameservers now.", upstream_in_flight);
    r.add("preflight_dns_upstream_duration_seconds", "Time the nameservers took per query (DnsTimeout included).",
          upstream_seconds);
}

}  // namespace preflight
