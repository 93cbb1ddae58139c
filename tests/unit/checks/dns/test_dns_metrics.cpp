// CachingResolver feeding DnsMetrics: hits by kind, misses, upstream outcomes and latency,
// coalesced waits; the counters run on across resolvers (a reload makes a new one).
#include <catch2/catch.hpp>

#include <atomic>
#include <future>
#include <mutex>
#include <string>
#include <thread>

#include "dns_cache.hpp"
#include "metrics.hpp"

using namespace preflight;
using namespace std::chrono_literals;

namespace {

// "nx.*" is NXDOMAIN, "nodata.*" NODATA, "fail.*" SERVFAIL, the rest one record. A gate can
// hold queries until the test opens it.
class Upstream : public Resolver {
public:
    std::atomic<int> calls{0};
    std::promise<void> gate;
    std::shared_future<void> opened = gate.get_future().share();
    bool gated = false;

    std::shared_ptr<const DnsAnswer> query(std::string_view name, std::uint16_t) override {
        ++calls;
        if (gated) opened.wait();
        auto a = std::make_shared<DnsAnswer>();
        a->ttl = 300;
        if (name.starts_with("nx.")) a->status = DnsStatus::nxdomain;
        else if (name.starts_with("fail.")) a->status = DnsStatus::servfail;
        else if (name.starts_with("nodata.")) a->status = DnsStatus::ok;
        else {
            a->status = DnsStatus::ok;
            a->records.push_back("192.0.2.1");
        }
        return a;
    }
};

std::uint64_t hits(const DnsMetrics& m, DnsMetrics::HitKind k) { return m.hits[static_cast<std::size_t>(k)].value(); }
std::uint64_t upstream(const DnsMetrics& m, DnsStatus s) { return m.upstream[static_cast<std::size_t>(s)].value(); }

}  // namespace

TEST_CASE("dns metrics: hits by kind, misses, upstream outcomes and latency", "[dns][metrics]") {
    DnsMetrics m;
    Upstream up;
    DnsCacheOptions opts;
    opts.metrics = &m;
    {
        CachingResolver cache(up, 100, opts);
        for (const char* name : {"example.org", "nx.example.org", "nodata.example.org", "fail.example.org"}) {
            cache.query(name, rrtype::A);
            cache.query(name, rrtype::A);
        }
    }
    CHECK(m.queries.value() == 8);
    CHECK(m.misses.value() == 4);
    CHECK(hits(m, DnsMetrics::HitKind::positive) == 1);
    CHECK(hits(m, DnsMetrics::HitKind::negative) == 2);
    CHECK(hits(m, DnsMetrics::HitKind::failure) == 1);
    CHECK(upstream(m, DnsStatus::ok) == 2);
    CHECK(upstream(m, DnsStatus::nxdomain) == 1);
    CHECK(upstream(m, DnsStatus::servfail) == 1);
    CHECK(m.upstream_seconds.snapshot().count == 4);
    CHECK(m.upstream_in_flight.value() == 0);

    // A second resolver (a reload with new DNS keys) counts on into the same metrics.
    CachingResolver next(up, 1, opts);
    next.query("a.example.org", rrtype::A);
    next.query("b.example.org", rrtype::A);  // evicts a
    CHECK(m.queries.value() == 10);
    CHECK(m.evictions.value() == 1);

    metrics::Registry r;
    m.register_with(r, [&] { return static_cast<double>(next.stats().entries); });
    std::string text = r.render();
    CHECK(text.find("preflight_dns_queries_total 10\n") != std::string::npos);
    CHECK(text.find("preflight_dns_cache_hits_total{answer=\"negative\"} 2\n") != std::string::npos);
    CHECK(text.find("preflight_dns_upstream_queries_total{status=\"servfail\"} 1\n") != std::string::npos);
    CHECK(text.find("preflight_dns_upstream_queries_total{status=\"bad_answer\"} 0\n") != std::string::npos);
    CHECK(text.find("preflight_dns_cache_entries 1\n") != std::string::npos);
    CHECK(text.find("preflight_dns_upstream_duration_seconds_count 6\n") != std::string::npos);
}

TEST_CASE("dns metrics: coalesced waits are counted while they wait", "[dns][metrics]") {
    DnsMetrics m;
    Upstream up;
    up.gated = true;
    DnsCacheOptions opts;
    opts.metrics = &m;
    CachingResolver cache(up, 100, opts);
    std::thread first([&] { cache.query("example.org", rrtype::A); });
    // Bounded waits (10 s each): a broken count fails the checks below instead of hanging.
    for (int i = 0; i < 10000 && m.upstream_in_flight.value() != 1; ++i) std::this_thread::sleep_for(1ms);
    CHECK(m.upstream_in_flight.value() == 1);
    std::thread second([&] { cache.query("example.org", rrtype::A); });
    for (int i = 0; i < 10000 && m.coalesced_waiting.value() != 1; ++i) std::this_thread::sleep_for(1ms);
    CHECK(m.coalesced_waiting.value() == 1);
    up.gate.set_value();
    first.join();
    second.join();
    CHECK(m.coalesced.value() == 1);
    CHECK(m.coalesced_waiting.value() == 0);
    CHECK(m.upstream_in_flight.value() == 0);
    CHECK(up.calls == 1);
}
