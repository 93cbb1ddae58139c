// Replies per second through ReplyClassifier::classify on one core, over a mix of the seed
// lines (tests/data) and, when present, the Diagnostic-Code lines of the public bounce corpus.
// Run: build/tests/bench_classify   (items_per_second is replies/s; exit 1 when a benchmark
// stopped with an error, e.g. no replies to classify)
#include <benchmark/benchmark.h>

#include <filesystem>
#include <fstream>

#include "bench_main.hpp"
#include "output.hpp"
#include "reply_classifier.hpp"
#include "text_engine.hpp"

using namespace preflight;

namespace {

std::vector<std::string> load_mix() {
    std::vector<std::string> mix;
    std::string line;
    std::ifstream seeds(PREFLIGHT_TEST_DATA "/seed-replies.tsv");
    while (std::getline(seeds, line)) {
        if (line.empty() || line[0] == '#') continue;
        auto a = line.find('\t'), b = line.find('\t', a + 1);
        if (a != std::string::npos && b != std::string::npos) mix.push_back(line.substr(a + 1, b - a - 1));
    }
    std::ifstream samples(PREFLIGHT_TEST_DATA "/sample-replies.txt");
    while (std::getline(samples, line))
        if (!line.empty()) mix.push_back(line);
    std::error_code ec;
    for (const auto& e : std::filesystem::directory_iterator(PREFLIGHT_CORPUS "/eml", ec)) {
        std::ifstream in(e.path());
        while (std::getline(in, line))
            if (line.rfind("Diagnostic-Code:", 0) == 0) mix.push_back(line);
    }
    return mix;
}

const std::vector<std::string>& mix() {
    static const std::vector<std::string> m = load_mix();
    return m;
}

void BM_Classify(benchmark::State& state) {
    ReplyClassifier cl(RuleSetBuilder().add_shipped().build());
    const auto& m = mix();
    if (m.empty()) {
        state.SkipWithError("no replies in " PREFLIGHT_TEST_DATA);
        return;
    }
    std::string scratch;
    std::size_t i = 0, bytes = 0;
    for (auto _ : state) {
        const std::string& r = m[i];
        benchmark::DoNotOptimize(cl.classify(r, Origin::remote, scratch));
        bytes += r.size();
        if (++i == m.size()) i = 0;
    }
    state.SetItemsProcessed(state.iterations());
    state.SetBytesProcessed(static_cast<int64_t>(bytes));
    state.counters["mix"] = static_cast<double>(m.size());
}
BENCHMARK(BM_Classify);

// The same mix through each rule engine built in, side by side in one run (label: the engine).
void BM_ClassifyEngine(benchmark::State& state) {
    const std::string_view engine = text_engines_built_in()[static_cast<std::size_t>(state.range(0))];
    state.SetLabel(std::string(engine));
    ReplyClassifier cl(RuleSetBuilder().add_shipped().build(engine));
    const auto& m = mix();
    if (m.empty()) {
        state.SkipWithError("no replies in " PREFLIGHT_TEST_DATA);
        return;
    }
    std::string scratch;
    std::size_t i = 0;
    for (auto _ : state) {
        benchmark::DoNotOptimize(cl.classify(m[i], Origin::remote, scratch));
        if (++i == m.size()) i = 0;
    }
    state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_ClassifyEngine)->DenseRange(0, static_cast<int>(text_engines_built_in().size()) - 1);

void BM_ClassifyAndWriteJson(benchmark::State& state) {
    ReplyClassifier cl(RuleSetBuilder().add_shipped().build());
    ResultWriter w(Format::json);
    const auto& m = mix();
    if (m.empty()) {
        state.SkipWithError("no replies in " PREFLIGHT_TEST_DATA);
        return;
    }
    std::string scratch, out;
    std::size_t i = 0;
    for (auto _ : state) {
        const std::string& r = m[i];
        w.result(out, r, cl.classify(r, Origin::remote, scratch));
        if (out.size() > (1 << 20)) out.clear();
        if (++i == m.size()) i = 0;
    }
    state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_ClassifyAndWriteJson);

void BM_ParseOnly(benchmark::State& state) {
    const auto& m = mix();
    if (m.empty()) {
        state.SkipWithError("no replies in " PREFLIGHT_TEST_DATA);
        return;
    }
    std::string scratch;
    ParsedReply p;
    std::size_t i = 0;
    for (auto _ : state) {
        parse_reply(m[i], scratch, p);
        benchmark::DoNotOptimize(p);
        if (++i == m.size()) i = 0;
    }
    state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_ParseOnly);

void BM_BuildRuleSet(benchmark::State& state) {
    for (auto _ : state) benchmark::DoNotOptimize(RuleSetBuilder().add_shipped().build());
}
BENCHMARK(BM_BuildRuleSet)->Unit(benchmark::kMillisecond);

}  // namespace

PREFLIGHT_BENCHMARK_MAIN()
