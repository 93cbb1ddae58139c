// The Hyperscan engine's ASCII path (classifier/core/ascii_prefilter.*) against its whole
// database, for the shipped rules: on any text, every group must report exactly the same
// patterns, every hit and not only the deciding one. The input is folded to ASCII (the high bit
// cleared), so that every input takes the path rather than the database it is compared with.
// Two variants of the path: as shipped (a nominated pattern checked by the database until RE2
// has compiled it, after 32 uses) and "hyperscan-eager" (RE2 from the first use), whose checks
// are what could differ from the database. Any difference aborts, naming the pattern.
// Each engine runs on a thread of its own: a thread's Hyperscan scratch is fitted to the last
// engine it used, and re-fitting it at every switch (hs_alloc_scratch validating the database)
// cost 90 % of the time, 180 inputs/s.
#include <algorithm>
#include <condition_variable>
#include <cstdio>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "fuzz_common.hpp"
#include "rule_set.hpp"
#include "text_engine.hpp"

using namespace preflight;

namespace {

// One engine on a thread of its own: start(text), then hits() waits for its answer.
class Worker {
public:
    explicit Worker(const TextEngine& e) : engine_(e), thread_([this] { loop(); }) {}
    ~Worker() {
        {
            std::lock_guard<std::mutex> lock(mu_);
            stop_ = true;
        }
        cv_.notify_all();
        thread_.join();
    }
    void start(std::string_view text) {
        {
            std::lock_guard<std::mutex> lock(mu_);
            text_ = text;
            pending_ = true;
        }
        cv_.notify_all();
    }
    const std::vector<std::uint32_t>& hits() {
        std::unique_lock<std::mutex> lock(mu_);
        cv_.wait(lock, [this] { return !pending_; });
        return hits_;
    }

private:
    void loop() {
        std::unique_lock<std::mutex> lock(mu_);
        for (;;) {
            cv_.wait(lock, [this] { return pending_ || stop_; });
            if (stop_) return;
            hits_ = engine_.all_hits(text_);  // text_ stays valid: start()'s caller waits in hits()
            pending_ = false;
            cv_.notify_all();
        }
    }
    const TextEngine& engine_;
    std::mutex mu_;
    std::condition_variable cv_;
    std::string_view text_;
    std::vector<std::uint32_t> hits_;
    bool pending_ = false, stop_ = false;
    std::thread thread_;  // last: starts once the rest is made
};

struct Engines {
    std::vector<TextPattern> patterns;
    std::unique_ptr<TextEngine> whole, fast, eager;
    std::unique_ptr<Worker> whole_worker, eager_worker;  // fast runs on the fuzzer's thread
};

const Engines& engines() {
    static const Engines e = [] {
        Engines out;
        RuleSetBuilder b;
        b.add_shipped();
        out.patterns = b.text_patterns();
        out.whole = compile_text_engine(out.patterns, "hyperscan-whole");
        out.fast = compile_text_engine(out.patterns, "hyperscan");
        out.eager = compile_text_engine(out.patterns, "hyperscan-eager");
        if (!out.whole || !out.fast || !out.eager) fuzz::fail("built without Hyperscan: no ASCII path to fuzz");
        out.whole_worker = std::make_unique<Worker>(*out.whole);
        out.eager_worker = std::make_unique<Worker>(*out.eager);
        return out;
    }();
    return e;
}

// The first pattern one list has and the other has not, for the report.
void report(const Engines& e, const char* engine, const std::vector<std::uint32_t>& want,
            const std::vector<std::uint32_t>& got) {
    for (int side = 0; side < 2; ++side) {
        const auto& a = side ? got : want;
        const auto& b = side ? want : got;
        for (std::uint32_t p : a) {
            if (std::find(b.begin(), b.end(), p) != b.end()) continue;
            std::fprintf(stderr, "%s: pattern %s (%s) %s\n", engine, e.patterns[p].location.c_str(),
                         e.patterns[p].pattern.c_str(),
                         side ? "matched by the ASCII path only" : "missed by the ASCII path");
            return;
        }
    }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    const Engines& e = engines();
    static std::string text;
    text.assign(fuzz::as_view(data, size));
    for (char& c : text) c = static_cast<char>(c & 0x7f);

    e.whole_worker->start(text);
    e.eager_worker->start(text);
    const std::vector<std::uint32_t> fast = e.fast->all_hits(text);
    const std::vector<std::uint32_t>& want = e.whole_worker->hits();
    const std::vector<std::uint32_t>& eager = e.eager_worker->hits();
    if (fast != want) report(e, "hyperscan", want, fast);
    FUZZ_CHECK(fast == want);
    if (eager != want) report(e, "hyperscan-eager", want, eager);
    FUZZ_CHECK(eager == want);
    return 0;
}
