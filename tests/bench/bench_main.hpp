// main() for the Google Benchmark programs of tests/bench, in place of BENCHMARK_MAIN(): the
// same flags and output, and exit status 1 when a benchmark stopped with an error
// (SkipWithError: no corpus, a store that failed, ...), so that a benchmark that measured
// nothing does not pass for a figure. A benchmark that does not apply to this run (no Redis
// given) says so with a message starting with kNotHere: it is reported and does not fail.
#pragma once

#include <benchmark/benchmark.h>

#include <cstdio>
#include <string>
#include <vector>

namespace preflight::bench {

inline constexpr const char* kNotHere = "skipped: ";

// Passes everything on to the display reporter the flags chose, counting the failed runs. That
// reporter is not deleted: some versions of the library hand out a static one.
class FailureCountingReporter : public benchmark::BenchmarkReporter {
public:
    explicit FailureCountingReporter(benchmark::BenchmarkReporter* display) : display_(display) {}
    bool ReportContext(const Context& context) override { return display_->ReportContext(context); }
    void ReportRuns(const std::vector<Run>& runs) override {
        for (const Run& r : runs)
            if (r.error_occurred && r.error_message.rfind(kNotHere, 0) != 0) {
                if (failed_++ == 0) first_ = r.benchmark_name() + ": " + r.error_message;
            }
        display_->ReportRuns(runs);
    }
    void Finalize() override { display_->Finalize(); }
    int failed() const { return failed_; }
    const std::string& first() const { return first_; }

private:
    benchmark::BenchmarkReporter* display_;
    int failed_ = 0;
    std::string first_;
};

inline int run_main(int argc, char** argv) {
    benchmark::Initialize(&argc, argv);
    if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 1;
    FailureCountingReporter reporter(benchmark::CreateDefaultDisplayReporter());
    benchmark::RunSpecifiedBenchmarks(&reporter);
    benchmark::Shutdown();
    if (reporter.failed()) {
        std::fprintf(stderr, "%s: FAIL: %d benchmark runs stopped with an error; the first: %s\n", argv[0],
                     reporter.failed(), reporter.first().c_str());
        return 1;
    }
    return 0;
}

}  // namespace preflight::bench

#define PREFLIGHT_BENCHMARK_MAIN() \
    int main(int argc, char** argv) { return preflight::bench::run_main(argc, argv); }
