#include "reply_command.hpp"

#include "arg_parser.hpp"

#include <poll.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <condition_variable>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <iostream>
#include <mutex>
#include <system_error>
#include <thread>

#include "command_common.hpp"
#include "output.hpp"
#include "reply_classifier.hpp"

namespace preflight {
namespace {

constexpr std::size_t kMaxReplyBytes = 64 * 1024;  // far above RFC 5321's 512-byte reply lines
constexpr std::size_t kReadChunk = 1 << 20;
// A batch is the unit handed to a worker: big enough that the hand-over (a few mutex and
// condition variable operations) is noise next to ~1 µs per reply, small enough to bound memory.
constexpr std::size_t kBatchLines = 4096;
constexpr std::size_t kBatchBytes = 1 << 20;

const char kUsage[] =
    "usage: preflight-classify reply [--format json|text|tsv] [--rules FILE]... [--origin remote|edge] [REPLY...]\n"
    "  Classifies SMTP replies. REPLY words are joined into one reply; without them, stdin is\n"
    "  read, one reply per line, and one result is written per line in the same order.\n"
    "  --format   json (JSON Lines; default when stdout is not a terminal), text, tsv\n"
    "  --rules    site rule file, evaluated before the shipped rules (repeatable)\n"
    "  --origin   edge: the replies come from our own relay edge (status 'rejected')\n"
    "  PREFLIGHT_THREADS=N in the environment sets the number of classifying threads for stdin\n"
    "  (default: one per core).\n"
    "exit: 0 all classified, 1 some could not be classified, 2 usage or rule file error\n";

// What every reply goes through; immutable, so shared by all worker threads.
struct Job {
    const ReplyClassifier& classifier;
    ResultWriter writer;
    Origin origin;

    // Appends the result for one reply to out; false if it could not be classified.
    bool one(std::string& out, std::string& scratch, std::string_view reply, std::size_t line) const {
        Classification c = classifier.classify(reply, origin, scratch);
        if (c.error != Classification::Error::none) {
            writer.error(out, reply, c.error_text(), line);
            return false;
        }
        writer.result(out, reply, c);
        return true;
    }
    void too_long(std::string& out, std::size_t line) const {
        writer.error(out, "", "reply longer than 65536 bytes", line);
    }
};

// A run of consecutive input lines and, once a worker is through with it, their results.
struct Batch {
    std::string text;                   // the lines, each ending in '\n'
    std::vector<std::size_t> too_long;  // lines over kMaxReplyBytes (empty in text), ascending
    std::size_t first_line = 0;         // global 1-based number of the first line
    std::size_t lines = 0;
    std::string out;  // results in input order
    bool all_classified = true;
    bool done = false;  // out is complete

    void classify(const Job& job, std::string& scratch) {
        out.clear();
        all_classified = true;
        std::string_view rest = text;
        auto long_line = too_long.begin();
        for (std::size_t line = first_line; !rest.empty(); ++line) {
            std::size_t nl = rest.find('\n');
            std::string_view reply = rest.substr(0, nl);
            rest.remove_prefix(nl + 1);
            if (long_line != too_long.end() && *long_line == line) {
                job.too_long(out, line);
                all_classified = false;
                ++long_line;
            } else if (!job.one(out, scratch, reply, line)) {
                all_classified = false;
            }
        }
    }
};

// Reader -> N workers -> writer, with results in input order and bounded memory.
//
// A ring of 2N batch slots; sequence number s lives in slot s % 2N. The reader (the calling
// thread) fills slot `submitted_` and may only reuse a slot once the writer has written it, so
// at most 2N batches exist (backpressure: the reader waits in acquire()). Workers take batches
// in sequence order, each into its own output buffer with its own parser scratch; the writer
// thread writes batch `written_` as soon as it is done, so order needs no reordering buffer.
// One mutex guards the three counters and the done flags; batch contents are touched outside
// it by whoever owns that stage, ownership passing through the counters under the mutex.
class OrderedPipeline {
public:
    // Throws std::system_error if a thread cannot be started (after stopping those that were).
    OrderedPipeline(const Job& job, unsigned workers) : job_(job), slots_(2 * std::size_t{workers}) {
        try {
            writer_ = std::thread([this] { write_loop(); });
            for (unsigned i = 0; i < workers; ++i) workers_.emplace_back([this] { work_loop(); });
        } catch (...) {
            finish();
            throw;
        }
    }
    OrderedPipeline(const OrderedPipeline&) = delete;
    OrderedPipeline& operator=(const OrderedPipeline&) = delete;
    ~OrderedPipeline() { finish(); }

    // An empty batch to fill, its first line numbered first_line; nullptr once a write failed.
    Batch* acquire(std::size_t first_line) {
        std::unique_lock lock(mu_);
        slot_free_.wait(lock, [&] { return submitted_ - written_ < slots_.size() || write_failed_; });
        if (write_failed_) return nullptr;
        Batch& b = slot(submitted_);
        b.done = false;
        lock.unlock();
        b.text.clear();
        b.too_long.clear();
        b.lines = 0;
        b.first_line = first_line;
        return &b;
    }
    // Hands the batch from acquire() to the workers.
    void submit() {
        {
            std::lock_guard lock(mu_);
            ++submitted_;
        }
        work_ready_.notify_one();
    }
    bool write_failed() {
        std::lock_guard lock(mu_);
        return write_failed_;
    }
    // No more input: waits until every submitted batch is written (or a write failed) and
    // stops the threads. Returns false if a write failed.
    bool finish() {
        {
            std::lock_guard lock(mu_);
            input_done_ = true;
        }
        work_ready_.notify_all();
        out_ready_.notify_all();
        for (auto& t : workers_)
            if (t.joinable()) t.join();
        if (writer_.joinable()) writer_.join();
        return !write_failed_;
    }
    // Valid after finish().
    bool all_classified() const { return all_classified_; }

private:
    Batch& slot(std::uint64_t seq) { return slots_[seq % slots_.size()]; }

    void work_loop() {
        std::string scratch;
        for (;;) {
            Batch* b;
            {
                std::unique_lock lock(mu_);
                work_ready_.wait(lock, [&] { return claimed_ < submitted_ || input_done_ || write_failed_; });
                if (write_failed_ || claimed_ == submitted_) return;  // failed, or input done and drained
                b = &slot(claimed_++);
            }
            b->classify(job_, scratch);
            {
                std::lock_guard lock(mu_);
                b->done = true;
            }
            out_ready_.notify_one();
        }
    }

    void write_loop() {
        for (;;) {
            Batch* b;
            {
                std::unique_lock lock(mu_);
                out_ready_.wait(lock, [&] {
                    bool next_done = written_ < submitted_ && slot(written_).done;
                    return next_done || (input_done_ && written_ == submitted_);
                });
                if (written_ == submitted_) return;  // input done and everything written
                b = &slot(written_);
            }
            bool ok = write_all(b->out);
            all_classified_ = all_classified_ && b->all_classified;
            {
                std::lock_guard lock(mu_);
                if (ok) ++written_;
                else write_failed_ = true;
            }
            if (!ok) {  // stop everyone: nothing more can reach stdout
                work_ready_.notify_all();
                slot_free_.notify_all();
                return;
            }
            slot_free_.notify_one();
        }
    }

    const Job& job_;
    std::vector<Batch> slots_;
    std::mutex mu_;
    std::condition_variable slot_free_, work_ready_, out_ready_;
    std::uint64_t submitted_ = 0, claimed_ = 0, written_ = 0;  // sequence numbers, in that order
    bool input_done_ = false, write_failed_ = false;
    bool all_classified_ = true;  // the writer thread's, read after finish()
    std::vector<std::thread> workers_;
    std::thread writer_;
};

// Whether a read() on stdin would return at once (data or EOF) rather than block.
bool input_ready() {
    pollfd p{STDIN_FILENO, POLLIN, 0};
    int r;
    do r = ::poll(&p, 1, 0);
    while (r < 0 && errno == EINTR);
    return r > 0;
}

// Streams stdin into batches of complete lines in constant memory; only a line split across
// reads is carried over, and never beyond kMaxReplyBytes. A partial batch is submitted before
// any read that could block, so that a slow producer (tail -f) sees its results promptly.
bool classify_stream(OrderedPipeline& pipe) {
    std::string buf(kReadChunk, '\0');
    std::string carry;
    bool carry_too_long = false;
    std::size_t line = 0;    // lines handed to batches so far
    Batch* batch = nullptr;  // being filled
    auto submit = [&] {
        if (batch) pipe.submit(), batch = nullptr;
    };
    // Adds one line (reply, or a too-long marker); false if output failed and we should stop.
    auto add = [&](std::string_view reply, bool too_long) {
        if (!batch && !(batch = pipe.acquire(line + 1))) return false;
        ++line;
        if (too_long) batch->too_long.push_back(line);
        else batch->text.append(reply);
        batch->text.push_back('\n');
        if (++batch->lines >= kBatchLines || batch->text.size() >= kBatchBytes) submit();
        return true;
    };
    bool ok = true;
    for (;;) {
        ssize_t n = ::read(STDIN_FILENO, buf.data(), buf.size());
        if (n < 0) {
            if (errno == EINTR) continue;
            std::cerr << "preflight-classify: read error on stdin: " << std::strerror(errno) << "\n";
            ok = false;
            break;
        }
        if (n == 0) break;
        std::string_view chunk(buf.data(), static_cast<std::size_t>(n));
        while (!chunk.empty()) {
            std::size_t nl = chunk.find('\n');
            if (nl == std::string_view::npos) {
                if (!carry_too_long && carry.size() + chunk.size() <= kMaxReplyBytes) carry.append(chunk);
                else carry_too_long = true, carry.clear();
                break;
            }
            std::string_view piece = chunk.substr(0, nl);
            chunk.remove_prefix(nl + 1);
            bool added;
            if (carry_too_long || carry.size() + piece.size() > kMaxReplyBytes) {
                added = add({}, true);
            } else if (!carry.empty()) {
                carry.append(piece);
                added = add(carry, false);
            } else {
                added = add(piece, false);
            }
            carry.clear();
            carry_too_long = false;
            if (!added) return false;
        }
        if (batch && (static_cast<std::size_t>(n) < buf.size() || !input_ready())) submit();
        if (pipe.write_failed()) return false;
    }
    if (ok && (carry_too_long || !carry.empty())) {  // last line without a newline
        if (!add(carry, carry_too_long)) return false;
    }
    submit();
    return pipe.finish() && ok;
}

}  // namespace

int run_reply_command(const std::vector<std::string>& args) {
    Format format = ::isatty(STDOUT_FILENO) ? Format::text : Format::json;
    Origin origin = Origin::remote;
    std::vector<std::string> rule_files, words;
    ArgParser parser("reply", kUsage);
    parser.option({"--format"}, format_option(format))
        .option({"--rules"}, append_to(rule_files))
        .option({"--origin"},
                [&](const std::string& v) -> std::optional<std::string> {
                    if (v == "remote") origin = Origin::remote;
                    else if (v == "edge") origin = Origin::edge;
                    else return "want remote or edge";
                    return std::nullopt;
                })
        .positional([&](const std::string& w) { words.push_back(w); });
    if (auto status = parser.parse(args)) return *status;

    std::shared_ptr<const RuleSet> rules = load_rules(rule_files);
    if (!rules) return 2;
    ReplyClassifier classifier(rules);
    const Job job{classifier, ResultWriter(format), origin};
    std::string out;
    job.writer.header(out);
    if (!words.empty()) {
        std::string reply, scratch;
        for (const auto& w : words) {
            if (!reply.empty()) reply.push_back(' ');
            reply.append(w);
        }
        bool classified = false;
        if (reply.size() > kMaxReplyBytes) job.too_long(out, 1);
        else classified = job.one(out, scratch, reply, 1);
        if (!write_all(out)) return 1;
        return classified ? 0 : 1;
    }
    if (!write_all(out)) return 1;
    try {
        OrderedPipeline pipe(job, worker_count());
        if (!classify_stream(pipe)) return 1;
        return pipe.all_classified() ? 0 : 1;
    } catch (const std::system_error& e) {  // no threads to be had
        std::cerr << "preflight-classify: " << e.what() << "\n";
        return 1;
    }
}

}  // namespace preflight
