// CPU cost of one transaction through MessageSession (MAIL FROM, 5 RCPT, headers, a 3 kB body,
// end of message) with every check on and DNS answered from the cache: the milter's own work
// per message, without libmilter or an MTA. Run: build/tests/bench_milter_session
#include <benchmark/benchmark.h>

#include <map>

#include "bench_main.hpp"
#include "dns_cache.hpp"
#include "message_session.hpp"
#include "zone_resolver.hpp"

using namespace preflight;

namespace {

void BM_Transaction(benchmark::State& state) {
    ZoneResolver zone;
    CachingResolver cache(zone, 10000);
    auto parsed = parse_config_text("bench.conf", "EgressAddresses 127.0.0.1\n");
    if (!parsed.ok()) {
        state.SkipWithError("bad conf");
        return;
    }
    MilterServices services{parsed.config, &cache, {"127.0.0.1"}, nullptr, {}, nullptr, nullptr, {}};
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

PREFLIGHT_BENCHMARK_MAIN()
