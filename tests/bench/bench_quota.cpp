// Cost of the quota check per recipient: one QuotaStore::reserve() (check and add, atomic) with
// the counters of a typical conf, for the SQLite store (a file under /tmp, WAL) and, when
// PREFLIGHT_BENCH_REDIS=HOST:PORT names a Redis, for the Redis store (one EVALSHA round trip
// over loopback). Also the whole MessageSession transaction (MAIL FROM, 5 RCPT, body, end of
// message) with a quota on, to compare with bench_milter_session's BM_Transaction. Without
// PREFLIGHT_BENCH_REDIS the Redis benchmarks are skipped; a store error fails the run (exit 1).
// PREFLIGHT_BENCH_QUOTA_CONF=FILE names a preflight.conf whose store (QuotaStore, its password
// files, QuotaStoreTimeout) BM_ReserveConfStore opens as the milter does: Redis with AUTH, behind
// stunnel, or a Sentinel master (each reserve then also waits for a replica, WAIT 1); see
// tests/bench/redis_store_bench.sh.
// Run: build/tests/bench_quota   (PREFLIGHT_BENCH_REDIS=127.0.0.1:6399 build/tests/bench_quota)
#include <benchmark/benchmark.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>

#include "bench_main.hpp"
#include "bench_services.hpp"
#include "dns_cache.hpp"
#include "message_session.hpp"
#include "quota.hpp"
#include "zone_resolver.hpp"

using namespace preflight;

namespace {

// A temp dir for the SQLite file, removed at exit.
struct TempDir {
    std::string path;
    TempDir() {
        path = (std::filesystem::temp_directory_path() / "preflight-bench-quota-XXXXXX").string();
        if (!mkdtemp(path.data())) std::abort();
    }
    ~TempDir() {
        std::error_code ec;
        std::filesystem::remove_all(path, ec);
    }
};

std::string temp_db() {
    static const TempDir dir;
    return dir.path + "/q.db";
}

std::int64_t now_ms() {
    return std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::system_clock::now().time_since_epoch())
        .count();
}

// state.range(0): counters per recipient (1: QuotaRecipients 1/window; 3: a day, an hour and a
// minute window). Each iteration reserves for one recipient of a rotating set of 1000 subjects.
void run_reserve(benchmark::State& state, QuotaStore& store) {
    const int n = static_cast<int>(state.range(0));
    std::vector<std::vector<QuotaCounter>> sets;
    for (int s = 0; s < 1000; ++s) {
        std::vector<QuotaCounter> c;
        const QuotaWindow w[] = {QuotaWindow::day, QuotaWindow::hour, QuotaWindow::minute};
        for (int i = 0; i < n; ++i)
            c.push_back({"domain:bench" + std::to_string(s) + ".example|recipients|" + std::string(to_string(w[i])),
                         w[i], 1'000'000'000, 1});
        sets.push_back(std::move(c));
    }
    std::size_t i = 0;
    for (auto _ : state) {
        QuotaResult r = store.reserve(sets[i++ % sets.size()], false, now_ms());
        if (!r.ok) {
            state.SkipWithError(r.error.c_str());
            break;
        }
        benchmark::DoNotOptimize(r);
    }
    state.SetItemsProcessed(state.iterations());
}

void BM_ReserveSqlite(benchmark::State& state) {
    auto store = open_quota_store(*parse_quota_store("sqlite:" + temp_db()), std::chrono::milliseconds(5000));
    run_reserve(state, *store);
}
BENCHMARK(BM_ReserveSqlite)->Arg(1)->Arg(3);

void BM_ReserveRedis(benchmark::State& state) {
    const char* where = std::getenv("PREFLIGHT_BENCH_REDIS");
    if (!where || !*where) {
        state.SkipWithError("skipped: PREFLIGHT_BENCH_REDIS not set");
        return;
    }
    auto store = open_quota_store(*parse_quota_store(std::string("redis://") + where), std::chrono::milliseconds(1000));
    run_reserve(state, *store);
}
BENCHMARK(BM_ReserveRedis)->Arg(1)->Arg(3);

void BM_ReserveConfStore(benchmark::State& state) {
    const char* file = std::getenv("PREFLIGHT_BENCH_QUOTA_CONF");
    if (!file || !*file) {
        state.SkipWithError("skipped: PREFLIGHT_BENCH_QUOTA_CONF not set");
        return;
    }
    auto parsed = parse_config_file(file);
    if (!parsed.ok()) {
        state.SkipWithError(("bad conf: " + parsed.errors.front().to_string()).c_str());
        return;
    }
    auto store = open_quota_store(parsed.config->global());
    run_reserve(state, *store);
}
// Real time: the cost is mostly waiting on the network (and on the replica), not CPU.
BENCHMARK(BM_ReserveConfStore)->Arg(1)->Arg(3)->UseRealTime();

// state.range(0): 0 no quota (as BM_Transaction), 1 SQLite, 2 Redis.
void BM_TransactionWithQuota(benchmark::State& state) {
    ZoneResolver zone;
    CachingResolver cache(zone, 10000);
    std::string store;
    if (state.range(0) == 1) store = "QuotaStore sqlite:" + temp_db() + "\n";
    if (state.range(0) == 2) {
        const char* where = std::getenv("PREFLIGHT_BENCH_REDIS");
        if (!where || !*where) {
            state.SkipWithError("skipped: PREFLIGHT_BENCH_REDIS not set");
            return;
        }
        store = std::string("QuotaStore redis://") + where + "\n";
    }
    std::string quota = state.range(0) ? "QuotaRecipients 1000000000/day\nQuotaMessages 1000000000/hour\n" : "";
    MilterServices services = bench_services(state, cache, "EgressAddresses 127.0.0.1\n" + quota + store);
    if (!services.config) return;
    std::unique_ptr<QuotaStore> qs;
    if (services.config->any_quota())
        qs = open_quota_store(services.config->global().quota_store, services.config->global().quota_store_timeout);
    services.quota_store = qs.get();
    const std::string body(3000, 'x');
    for (auto _ : state) {
        MessageSession s(services);
        benchmark::DoNotOptimize(s.mail_from("<sender@good.test>", {"SIZE=3500"}));
        for (int r = 0; r < 5; ++r) benchmark::DoNotOptimize(s.rcpt_to("<rcpt@example.test>"));
        s.header("From", "sender@good.test");
        s.end_of_headers();
        benchmark::DoNotOptimize(s.body(body));
        benchmark::DoNotOptimize(s.end_of_message());
    }
    state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_TransactionWithQuota)->Arg(0)->Arg(1)->Arg(2);

}  // namespace

PREFLIGHT_BENCHMARK_MAIN()
