#include "dsn_command.hpp"

#include "arg_parser.hpp"

#include "unique_fd.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cctype>
#include <cerrno>
#include <condition_variable>
#include <cstring>
#include <filesystem>
#include <future>
#include <iostream>
#include <mutex>
#include <thread>

#include "bounce_classifier.hpp"
#include "command_common.hpp"
#include "suppress_sources.hpp"

namespace preflight {
namespace {

namespace fs = std::filesystem;

constexpr std::size_t kDefaultMaxBytes = 100'000'000;  // "100 MB": larger inputs are refused
constexpr std::size_t kDefaultMaxParts = 1000;
// How far workers may run ahead of the writer: bounds the results held in memory.
constexpr std::size_t kWindow = 256;

const char kUsage[] =
    "usage: preflight-classify dsn [--format json|text|tsv] [--rules FILE]... [--max-size BYTES]\n"
    "                              [--max-parts N] [--suppress [--conf FILE] [--sender ADDRESS]]\n"
    "                              [FILE|DIR|-]...\n"
    "  Reads bounce messages (one message per file, a directory or maildir of them, an mbox, or\n"
    "  stdin for '-' or no argument) and writes one record per failed or delayed recipient.\n"
    "  --format     json (JSON Lines; default when stdout is not a terminal), text, tsv\n"
    "  --rules      site rule file, evaluated before the shipped rules (repeatable)\n"
    "  --max-size   refuse inputs larger than BYTES (default 100000000)\n"
    "  --max-parts  refuse messages with more than N MIME parts (default 1000)\n"
    "  --suppress   also record each failed recipient and each complaint (ARF abuse report)\n"
    "               on the suppression list of the conf's SuppressionStore; delay notices and\n"
    "               auto-replies are no failures (see preflight-classify(1), SUPPRESSION)\n"
    "  --conf FILE  the preflight.conf of --suppress (default /etc/preflight/preflight.conf)\n"
    "  --sender     the original sender, when the bounces do not name it (a pipe transport:\n"
    "               ${original_recipient})\n"
    "  PREFLIGHT_THREADS=N sets the number of parsing threads (default: one per core).\n"
    "exit: 0 every input read, 1 some input failed (an error record names it), 2 usage or rule file error\n";

struct Input {
    std::string name;  // as shown in the records
    std::string path;  // empty: data is already read (stdin)
    std::string data;
    std::string error;  // set while expanding arguments (missing file, unreadable directory)
};

struct Options {
    Format format = Format::json;
    std::size_t max_bytes = kDefaultMaxBytes;
    BounceLimits limits;
    SuppressSink* suppress = nullptr;  // --suppress
    std::string sender;                // --sender
};

bool read_file(const std::string& path, std::size_t max_bytes, std::string& data, std::string& error) {
    UniqueFd file(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
    if (!file) {
        error = std::string("cannot open: ") + std::strerror(errno);
        return false;
    }
    const int fd = file.get();
    struct stat st {};
    bool ok = ::fstat(fd, &st) == 0;
    if (ok && static_cast<std::size_t>(st.st_size) > max_bytes) {
        error = "file too large: " + std::to_string(st.st_size) + " bytes, the limit is " + std::to_string(max_bytes);
        return false;
    }
    data.clear();
    if (ok) data.resize(static_cast<std::size_t>(st.st_size));
    std::size_t got = 0;
    while (ok) {
        if (got == data.size()) data.resize(std::max<std::size_t>(4096, data.size() * 2));  // a file that grew
        ssize_t n = ::read(fd, data.data() + got, data.size() - got);
        if (n < 0 && errno == EINTR) continue;
        if (n < 0) {
            error = std::string("read error: ") + std::strerror(errno);
            ok = false;
        } else if (n == 0) {
            break;
        } else {
            got += static_cast<std::size_t>(n);
            if (got > max_bytes) {
                error = "file too large: more than " + std::to_string(max_bytes) + " bytes";
                ok = false;
            }
        }
    }
    if (!ok && error.empty()) error = std::string("cannot stat: ") + std::strerror(errno);
    data.resize(ok ? got : 0);
    return ok;
}

bool read_stdin(std::size_t max_bytes, std::string& data, std::string& error) {
    char buf[1 << 16];
    for (;;) {
        ssize_t n = ::read(STDIN_FILENO, buf, sizeof buf);
        if (n < 0 && errno == EINTR) continue;
        if (n < 0) {
            error = std::string("read error: ") + std::strerror(errno);
            return false;
        }
        if (n == 0) return true;
        data.append(buf, static_cast<std::size_t>(n));
        if (data.size() > max_bytes) {
            error = "input too large: more than " + std::to_string(max_bytes) + " bytes";
            data.clear();
            // Drain the rest so that the producer does not get EPIPE for our refusal.
            while (::read(STDIN_FILENO, buf, sizeof buf) > 0) {}
            return false;
        }
    }
}

// Regular files under dir, sorted, hidden names and maildir tmp/ left out.
void expand_dir(const std::string& dir, std::vector<Input>& out) {
    std::vector<std::string> files;
    std::error_code ec;
    fs::recursive_directory_iterator it(dir, fs::directory_options::skip_permission_denied, ec), end;
    if (ec) {
        out.push_back({dir, {}, {}, "cannot read directory: " + ec.message()});
        return;
    }
    for (; it != end; it.increment(ec)) {
        if (ec) break;
        const fs::path& p = it->path();
        std::string name = p.filename().string();
        if (name.starts_with(".") ||
            (name == "tmp" && it->is_directory(ec) && fs::exists(p.parent_path() / "cur", ec))) {
            if (it->is_directory(ec)) it.disable_recursion_pending();
            continue;
        }
        if (it->is_regular_file(ec)) files.push_back(p.string());
    }
    std::sort(files.begin(), files.end());
    for (auto& f : files) out.push_back({f, f, {}, {}});
}

// Classifies every message of one input into out; false if any of them failed.
bool process(const Input& in, const Options& opt, const ReplyClassifier& cl, std::string& scratch, std::string& out) {
    if (!in.error.empty()) {
        append_file_error(out, opt.format, in.name, in.error);
        return false;
    }
    std::string owned, error;
    std::string_view data = in.data;
    if (!in.path.empty()) {
        if (!read_file(in.path, opt.max_bytes, owned, error)) {
            append_file_error(out, opt.format, in.name, error);
            return false;
        }
        data = owned;
    }
    std::vector<std::string_view> messages = split_mbox(data);
    bool ok = true;
    for (std::size_t i = 0; i < messages.size(); ++i) {
        std::string name = in.name;
        if (messages.size() > 1) name.append("#").append(std::to_string(i + 1));
        BounceReport report = parse_bounce_message(messages[i], opt.limits);
        if (report.error.empty() && report.recipients.empty())
            report.error = report.truncated
                               ? "truncated message: it ends inside its MIME structure, no failed recipient found"
                               : "no failed recipient found: not a bounce?";
        if (!report.error.empty()) {
            append_file_error(out, opt.format, name, report.error);
            ok = false;
            continue;
        }
        std::vector<BounceVerdict> verdicts = classify_bounce(report, cl, scratch);
        for (const BounceVerdict& v : verdicts) append_verdict(out, opt.format, name, report, v);
        if (opt.suppress) opt.suppress->bounce(report, verdicts, messages[i], opt.sender, std::time(nullptr));
        if (report.truncated) {  // what was found is written, and the input still counts as failed
            append_file_error(out, opt.format, name,
                              "truncated message: it ends inside its MIME structure, records may be missing");
            ok = false;
        }
    }
    return ok;
}

// Inputs are read, parsed and classified by workers in any order and written in input order.
// The rules compile on their own thread meanwhile: for a few hundred messages, compiling them
// costs as much as the parsing.
class Runner {
public:
    Runner(std::vector<Input>& inputs, const Options& opt, std::shared_future<std::shared_ptr<const RuleSet>> rules)
        : inputs_(inputs), opt_(opt), rules_(std::move(rules)), slots_(inputs.size()) {}

    // The exit code.
    int run(unsigned workers) {
        workers =
            std::max(1u, std::min<unsigned>(workers, static_cast<unsigned>(std::max<std::size_t>(1, inputs_.size()))));
        std::vector<std::thread> threads;
        try {
            for (unsigned i = 0; i < workers; ++i) threads.emplace_back([this] { work(); });
        } catch (const std::system_error& e) {
            std::cerr << "preflight-classify: " << e.what() << "\n";
            stop(threads);
            return 1;
        }
        if (!rules_.get()) {  // the rule file error is printed
            stop(threads);
            return 2;
        }
        std::string out;
        append_verdict_header(out, opt_.format);
        bool all_ok = true, write_ok = write_all(out);
        for (std::size_t i = 0; i < slots_.size() && write_ok; ++i) {
            std::unique_lock lock(mu_);
            done_cv_.wait(lock, [&] { return slots_[i].done; });
            std::string text = std::move(slots_[i].out);
            all_ok = all_ok && slots_[i].ok;
            lock.unlock();
            write_ok = write_all(text);
            lock.lock();
            written_ = i + 1;
            lock.unlock();
            space_cv_.notify_all();
        }
        stop(threads);
        return write_ok && all_ok ? 0 : 1;
    }

private:
    struct Slot {
        std::string out;
        bool ok = true, done = false;
    };

    void stop(std::vector<std::thread>& threads) {
        {
            std::lock_guard lock(mu_);
            stopping_ = true;
        }
        space_cv_.notify_all();
        for (auto& t : threads) t.join();
    }

    void work() {
        std::string scratch;
        std::shared_ptr<const RuleSet> rules;
        std::unique_ptr<ReplyClassifier> cl;
        for (;;) {
            std::size_t i = next_.fetch_add(1);
            if (i >= slots_.size()) return;
            {
                std::unique_lock lock(mu_);
                space_cv_.wait(lock, [&] { return stopping_ || i < written_ + kWindow; });
                if (stopping_) return;
            }
            if (!cl) {
                rules = rules_.get();
                if (!rules) return;
                cl = std::make_unique<ReplyClassifier>(rules);
            }
            Slot s;
            try {
                s.ok = process(inputs_[i], opt_, *cl, scratch, s.out);
            } catch (const std::exception& e) {  // out of memory on a huge input: that input fails
                s.out.clear();
                append_file_error(s.out, opt_.format, inputs_[i].name, std::string("internal error: ") + e.what());
                s.ok = false;
            }
            inputs_[i].data = std::string();  // stdin's copy is no longer needed
            {
                std::lock_guard lock(mu_);
                s.done = true;
                slots_[i] = std::move(s);
            }
            done_cv_.notify_all();
        }
    }

    std::vector<Input>& inputs_;
    const Options& opt_;
    std::shared_future<std::shared_ptr<const RuleSet>> rules_;
    std::vector<Slot> slots_;
    std::atomic<std::size_t> next_{0};
    std::mutex mu_;
    std::condition_variable done_cv_, space_cv_;
    std::size_t written_ = 0;
    bool stopping_ = false;
};

}  // namespace

std::vector<std::string_view> split_mbox(std::string_view data) {
    if (!data.starts_with("From ")) return {data};
    std::vector<std::string_view> out;
    std::size_t start = 0;
    while (start < data.size()) {
        std::size_t body = data.find('\n', start);
        if (body == std::string_view::npos) break;
        ++body;
        std::size_t next = data.find("\nFrom ", body - 1);
        std::size_t end = next == std::string_view::npos ? data.size() : next + 1;
        out.push_back(data.substr(body, end - body));
        start = end;
    }
    if (out.empty()) out.push_back(data);
    return out;
}

bool load_dsn_records(const std::string& dir, std::vector<DsnRecord>& out, std::string& error) {
    std::vector<Input> inputs;
    expand_dir(dir, inputs);
    bool ok = true;
    auto fail = [&](const std::string& name, const std::string& why) {
        if (ok) error = name + ": " + why;  // the first one; the caller reports it
        ok = false;
    };
    for (Input& in : inputs) {
        if (!in.error.empty()) {
            fail(in.name, in.error);
            continue;
        }
        std::string data, why;
        if (!read_file(in.path, kDefaultMaxBytes, data, why)) {
            fail(in.name, why);
            continue;
        }
        std::error_code ec;
        auto mtime = fs::last_write_time(in.path, ec);
        std::int64_t file_time = ec ? 0
                                    : std::chrono::duration_cast<std::chrono::seconds>(
                                          std::chrono::file_clock::to_sys(mtime).time_since_epoch())
                                          .count();
        for (std::string_view msg : split_mbox(data)) {
            BounceReport r = parse_bounce_message(msg);
            if (!r.error.empty()) {
                fail(in.name, r.error);
                continue;
            }
            if (r.kind == ReportKind::auto_reply || r.kind == ReportKind::feedback_report || r.delay_notice) continue;
            for (const BounceRecipient& rc : r.recipients) {
                if (!rc.action.empty() && rc.action != "failed") continue;  // delayed, delivered, relayed
                DsnRecord d;
                d.queue_id = r.queue_id;
                d.message_id = r.message_id;
                if (d.message_id.size() >= 2 && d.message_id.front() == '<' && d.message_id.back() == '>')
                    d.message_id = d.message_id.substr(1, d.message_id.size() - 2);
                d.recipient = rc.recipient;
                d.time.civil = (r.has_date ? r.date : file_time) + (r.has_date ? r.date_offset : 0);
                d.time.offset = r.has_date ? r.date_offset : 0;
                // A failure after temporary errors is the queue lifetime running out.
                d.status = rc.status.starts_with("4.") ? Status::expired : Status::bounce;
                d.reason = !rc.diagnostic.empty() ? rc.diagnostic : rc.status;
                // "smtp; 550 5.1.1 ...": the row shows the reply, not RFC 3464's diagnostic type.
                if (std::size_t semi = d.reason.find(';');
                    semi != std::string::npos && semi < 16 &&
                    std::all_of(d.reason.begin(), d.reason.begin() + static_cast<std::ptrdiff_t>(semi),
                                [](unsigned char ch) { return std::isalnum(ch) || ch == '-'; })) {
                    std::size_t from = d.reason.find_first_not_of(' ', semi + 1);
                    d.reason.erase(0, from == std::string::npos ? d.reason.size() : from);
                }
                out.push_back(std::move(d));
            }
        }
    }
    return ok;
}

int run_dsn_command(const std::vector<std::string>& args) {
    Options opt;
    opt.format = ::isatty(STDOUT_FILENO) ? Format::text : Format::json;
    std::vector<std::string> rule_files, paths;
    bool suppress_on = false;
    std::string conf = kDefaultConf;
    ArgParser parser("dsn", kUsage);
    parser.option({"--format"}, format_option(opt.format))
        .option({"--rules"}, append_to(rule_files))
        .option({"--max-size"}, whole_number(opt.max_bytes, 1, 999999999999999999ULL, "a positive whole number"))
        .option({"--max-parts"},
                whole_number(opt.limits.max_parts, 1, 999999999999999999ULL, "a positive whole number"))
        .flag({"--suppress"}, [&] { suppress_on = true; })
        .option({"--conf"}, store_in(conf))
        .option({"--sender"}, store_in(opt.sender))
        .positional([&](const std::string& p) { paths.push_back(p); });
    if (auto status = parser.parse(args)) return *status;
    if (paths.empty()) paths.push_back("-");
    std::unique_ptr<SuppressSink> suppress;
    if (suppress_on) {
        std::string error;
        std::unique_ptr<SuppressionFeed> feed = open_suppression_feed(conf, error);
        if (!feed) {
            std::cerr << "preflight-classify: " << error << "\n";
            return 2;
        }
        suppress = std::make_unique<SuppressSink>(std::move(feed));
        opt.suppress = suppress.get();
    }

    // Compiling the rules takes tens of milliseconds: start now, overlap with reading inputs.
    std::shared_future<std::shared_ptr<const RuleSet>> rules =
        std::async(std::launch::async, [rule_files] { return load_rules(rule_files); }).share();

    std::vector<Input> inputs;
    bool stdin_used = false;
    for (const auto& p : paths) {
        if (p == "-") {
            Input in{"-", {}, {}, {}};
            if (stdin_used) in.error = "stdin named twice";
            else read_stdin(opt.max_bytes, in.data, in.error);
            stdin_used = true;
            inputs.push_back(std::move(in));
            continue;
        }
        std::error_code ec;
        fs::file_status st = fs::status(p, ec);
        if (ec || !fs::exists(st)) {
            inputs.push_back(
                {p, {}, {}, "cannot open: " + (ec ? ec.message() : std::string("No such file or directory"))});
        } else if (fs::is_directory(st)) {
            expand_dir(p, inputs);
        } else {
            inputs.push_back({p, p, {}, {}});
        }
    }
    Runner runner(inputs, opt, rules);
    int status = runner.run(worker_count());
    if (suppress) {
        suppress->summary();
        if (suppress->failed() && status == 0) status = 1;
    }
    return status;
}

}  // namespace preflight
