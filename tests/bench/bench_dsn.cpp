// Where the time of `preflight-classify dsn` goes, per email, on one core: GMime's parse of
// the message (parse_bounce_message), the classification of what it found (classify_bounce),
// and both. Input: the emails of the public bounce corpus (../shared/corpus/bounces/eml), read
// into memory first, taken in turn; the first round over them is a warm-up so the lazy DFA
// of the rule sets has seen the texts (the novel-text cost is in dsn_vs_sisimai.sh's one-pass
// figure). Without the corpus each benchmark stops with an error naming the missing directory,
// and the program exits 1.
// Run: build/tests/bench_dsn   (items_per_second is emails/s)
#include <benchmark/benchmark.h>

#include <filesystem>
#include <fstream>
#include <sstream>

#include "bench_main.hpp"
#include "bounce_classifier.hpp"
#include "bounce_message.hpp"
#include "reply_classifier.hpp"

using namespace preflight;

namespace {

const std::vector<std::string>& emails() {
    static const std::vector<std::string> all = [] {
        std::vector<std::string> v;
        std::error_code ec;
        for (const auto& e : std::filesystem::directory_iterator(PREFLIGHT_CORPUS "/eml", ec)) {
            std::ifstream in(e.path(), std::ios::binary);
            std::ostringstream s;
            s << in.rdbuf();
            v.push_back(s.str());
        }
        return v;
    }();
    return all;
}

const ReplyClassifier& classifier() {
    static const ReplyClassifier cl(RuleSetBuilder().add_shipped().build());
    return cl;
}

void run(benchmark::State& state, bool parse_each, bool classify) {
    const auto& m = emails();
    if (m.empty()) {
        state.SkipWithError("no corpus at " PREFLIGHT_CORPUS "/eml");
        return;
    }
    std::vector<BounceReport> parsed;
    if (!parse_each)
        for (const auto& e : m) parsed.push_back(parse_bounce_message(e));
    std::string scratch;
    for (const auto& e : m) benchmark::DoNotOptimize(classify_bounce(parse_bounce_message(e), classifier(), scratch));
    std::size_t i = 0, bytes = 0;
    for (auto _ : state) {
        if (parse_each) {
            BounceReport r = parse_bounce_message(m[i]);
            if (classify) benchmark::DoNotOptimize(classify_bounce(r, classifier(), scratch));
            benchmark::DoNotOptimize(r);
        } else {
            benchmark::DoNotOptimize(classify_bounce(parsed[i], classifier(), scratch));
        }
        bytes += m[i].size();
        if (++i == m.size()) i = 0;
    }
    state.SetItemsProcessed(state.iterations());
    state.SetBytesProcessed(static_cast<int64_t>(bytes));
    state.counters["emails"] = static_cast<double>(m.size());
}

void BM_ParseOnly(benchmark::State& state) { run(state, true, false); }
void BM_ClassifyOnly(benchmark::State& state) { run(state, false, true); }
void BM_ParseAndClassify(benchmark::State& state) { run(state, true, true); }
BENCHMARK(BM_ParseOnly);
BENCHMARK(BM_ClassifyOnly);
BENCHMARK(BM_ParseAndClassify);

}  // namespace

PREFLIGHT_BENCHMARK_MAIN()
