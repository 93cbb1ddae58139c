// Tenants at scale: reading a tenants file of 100,000 lines (what start-up and each SIGHUP
// reload add), and the milter's CPU per transaction with no tenants file, one tenant and
// 100,000 tenants (the lookup is one hash probe; the figures should be within noise of each
// other). The file is generated here, the same every run. Run: build/tests/bench_tenants
#include <benchmark/benchmark.h>

#include <unistd.h>

#include <cstdio>
#include <filesystem>
#include <fstream>

#include "bench_main.hpp"
#include "bench_services.hpp"
#include "dns_cache.hpp"
#include "message_session.hpp"
#include "tenants.hpp"
#include "zone_resolver.hpp"

using namespace preflight;

namespace {

// Tenant i: a plan of its own (quotas, limits, billing day); good.test is the last line.
std::string tenants_text(std::size_t n) {
    std::string out;
    out.reserve(n * 110);
    char line[256];
    for (std::size_t i = 0; i + 1 < n; ++i) {
        std::snprintf(line, sizeof line,
                      "customer-%06zu.example QuotaRecipients=%zu/month,%zu/hour MaxRecipients=%zu "
                      "MaxMessageSize=%zuM BillingDay=%zu\n",
                      i, 1000 + i % 9000, 100 + i % 50, 10 + i % 90, 1 + i % 50, 1 + i % 31);
        out += line;
    }
    out += "good.test MaxRecipients=50 MaxMessageSize=20M BillingDay=15\n";
    return out;
}

void BM_ReadTenantsFile(benchmark::State& state) {
    const std::size_t n = static_cast<std::size_t>(state.range(0));
    const std::string path =
        (std::filesystem::temp_directory_path() / ("preflight-bench-tenants-" + std::to_string(getpid()))).string();
    { std::ofstream(path, std::ios::binary) << tenants_text(n); }
    const Settings defaults;
    for (auto _ : state) {
        TenantsResult r = parse_tenants_file(path, defaults);
        if (!r.table || r.table->size() != n) {
            state.SkipWithError("the generated tenants file did not load whole");
            break;
        }
        benchmark::DoNotOptimize(r.table.get());
    }
    std::filesystem::remove(path);
    state.SetItemsProcessed(state.iterations() * static_cast<std::int64_t>(n));
}
BENCHMARK(BM_ReadTenantsFile)->Arg(100'000)->Unit(benchmark::kMillisecond)->Iterations(5);

// As bench_milter_session's BM_Transaction, with a tenants table of range(0) lines (0: none);
// the sender domain good.test is a tenant whenever there is a table.
void BM_TransactionWithTenants(benchmark::State& state) {
    ZoneResolver zone;
    CachingResolver cache(zone, 10000);
    MilterServices services = bench_services(state, cache, "EgressAddresses 127.0.0.1\n");
    if (!services.config) return;
    if (state.range(0) > 0) {
        TenantsResult t =
            parse_tenants_text("bench", tenants_text(static_cast<std::size_t>(state.range(0))), Settings{});
        if (!t.table) {
            state.SkipWithError("tenants did not load");
            return;
        }
        services.tenants = t.table;
    }
    const std::string body(3000, 'x');
    for (auto _ : state) {
        MessageSession s(services);
        benchmark::DoNotOptimize(s.mail_from("<sender@good.test>", {"SIZE=3500"}));
        if (services.tenants && !s.tenant()) {
            state.SkipWithError("good.test is not found as a tenant");
            break;
        }
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
BENCHMARK(BM_TransactionWithTenants)->Arg(0)->Arg(1)->Arg(100'000);

}  // namespace

PREFLIGHT_BENCHMARK_MAIN()
