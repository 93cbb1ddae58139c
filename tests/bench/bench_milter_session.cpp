// CPU cost of one transaction through MessageSession (MAIL FROM, 5 RCPT, headers, a 3 kB body,
// end of message) with every check on and DNS answered from the cache: the milter's own work
// per message, without libmilter or an MTA. Run: build/tests/bench_milter_session
#include <benchmark/benchmark.h>

#include <map>

#include "dns_cache.hpp"
#include "message_session.hpp"

using namespace preflight;

namespace {

// Answers like an authoritative server for a few names; everything else is NXDOMAIN.
class ZoneResolver : public Resolver {
public:
    std::shared_ptr<const DnsAnswer> query(std::string_view name, std::uint16_t type) override {
        auto a = std::make_shared<DnsAnswer>();
        a->status = DnsStatus::ok;
        a->ttl = 3600;
        std::string n(name);
        if (n == "good.test" && type == rrtype::MX) {
            a->records = {"10 mx.good.test"};
            a->mx = {{10, "mx.good.test"}};
        } else if (n == "good.test" && type == rrtype::TXT) {
            a->records = {"v=spf1 ip4:127.0.0.0/8 -all"};
        } else if (n != "good.test" && n != "mx.good.test") {
            a->status = DnsStatus::nxdomain;
        }
        return a;
    }
};

void BM_Transaction(benchmark::State& state) {
    ZoneResolver zone;
    CachingResolver cache(zone, 10000);
    auto parsed = parse_config_text("bench.conf", "EgressAddresses 127.0.0.1\n");
    if (!parsed.ok()) {
        state.SkipWithError("bad conf");
        return;
    }
    MilterServices services{parsed.config, &cache, {"127.0.0.1"}, nullptr, {}};
    const std::string body(3000, 'x');
    for (auto _ : state) {
        MessageSession s(services);
        benchmark::DoNotOptimize(s.mail_from("<sender@good.test>", {"SIZE=3500"}));
        for (int r = 0; r < 5; ++r) benchmark::DoNotOptimize(s.rcpt_to("<rcpt@example.test>"));
        s.header("From", "sender@good.test");
        s.header("To", "rcpt@example.test");
        s.header("Subject", "bench");
        s.end_of_headers();
        benchmark::DoNotOptimize(s.body(body));
        benchmark::DoNotOptimize(s.end_of_message());
    }
    state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_Transaction);

}  // namespace

BENCHMARK_MAIN();
