#include "log_command.hpp"

#include "arg_parser.hpp"

#include "duration.hpp"
#include "staged_output.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <charconv>
#include <csignal>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <iostream>
#include <optional>

#include "command_common.hpp"
#include "delivery_tracker.hpp"
#include "delivery_writers.hpp"
#include "log_reader.hpp"
#include "postfix_log.hpp"
#include "suppress_sources.hpp"

namespace preflight {
namespace {

const char kUsage[] =
    "usage: preflight-classify log [--format csv|json|xlsx] [--raw] [--output FILE] [--wide] [--follow]\n"
    "                              [--dsn DIR]... [--rules FILE]... [--queue-lifetime TIME]\n"
    "                              [--suppress [--conf FILE]] [MAILLOG...]\n"
    "  Reads Postfix logs (syslog or maillog_file format, plain or gzip; stdin when no MAILLOG\n"
    "  or '-'; on a journald-only host: journalctl -u postfix@- -o short-iso | ... log) and\n"
    "  writes one row per recipient with its final state: Sent, Deferred, Bounce,\n"
    "  Rejected or Expired. Several MAILLOGs are read as one log, in the order given (oldest\n"
    "  first: maillog.2.gz maillog.1 maillog).\n"
    "  --format          csv (default; RFC 4180), json (JSON Lines), xlsx (needs --output or a\n"
    "                    stdout that is not a terminal)\n"
    "  --raw             csv: write every value as it came; without it a cell starting with\n"
    "                    = + - @ tab or CR gets a leading ' so that spreadsheets show it as\n"
    "                    text instead of running it as a formula (addresses and replies are\n"
    "                    written by strangers). json is always as it came, xlsx cells are text\n"
    "  --output FILE     write to FILE instead of stdout\n"
    "  --wide            also queue id, category, bounce type, enhanced code, relay, delay\n"
    "  --follow          after the input, keep reading the last MAILLOG as it grows (rotation\n"
    "                    and truncation handled) and write rows as they become final; stop\n"
    "                    with SIGINT or SIGTERM\n"
    "  --dsn DIR         bounce reports received after delivery: a Sent row they refer to\n"
    "                    becomes a Bounce with their reason (repeatable)\n"
    "  --rules FILE      site classifier rules, before the shipped ones (repeatable)\n"
    "  --queue-lifetime  Postfix's maximal_queue_lifetime (default 5d; units s m h d w, plain\n"
    "                    number = days): a queue id the log has not mentioned for longer is\n"
    "                    forgotten, its still-deferred recipients written as Deferred\n"
    "  --suppress        also record each final failure on the suppression list of the conf's\n"
    "                    SuppressionStore (bounced, expired; still deferred at the end): see\n"
    "                    preflight-classify(1), SUPPRESSION\n"
    "  --conf FILE       the preflight.conf of --suppress (default /etc/preflight/preflight.conf)\n"
    "exit: 0 all read, 1 bad input lines or unreadable input (rows still written), 2 usage\n";

constexpr std::size_t kOutFlush = 256 * 1024;
constexpr int kMaxReported = 10;  // bad lines reported one by one; the rest are counted
constexpr int kPollMillis = 250;

volatile std::sig_atomic_t g_stop = 0;
extern "C" void on_stop_signal(int) { g_stop = 1; }

int usage_error(const std::string& what) {
    std::cerr << "preflight-classify log: " << what << "\n" << kUsage;
    return 2;
}

struct Options {
    RowFormat format = RowFormat::csv;
    std::string output;
    bool wide = false, follow = false, raw = false;
    std::vector<std::string> rules, files, dsn_dirs;
    TrackerOptions tracker;
    bool suppress = false;
    std::string conf = kDefaultConf;
};

// Where rows go: a text buffer flushed to a file descriptor, or an XLSX workbook.
class Output {
public:
    Output(const Options& o, int fd)
        : text_(o.format, o.wide, o.raw ? CsvCells::raw : CsvCells::neutralised), fd_(fd) {}
    void open_xlsx(const std::string& path, bool wide) { xlsx_.emplace(path, wide); }
    void header() {
        if (!xlsx_) text_.header(buf_);
    }
    void row(const DeliveryRow& r) {
        if (failed_) return;
        if (xlsx_) {
            std::string error;
            if (!xlsx_->row(r, error)) {
                std::cerr << "preflight-classify: " << error << "\n";
                failed_ = true;
            }
            return;
        }
        text_.row(buf_, r);
        if (buf_.size() >= kOutFlush) flush();
    }
    void flush() {
        if (!failed_ && !xlsx_ && !buf_.empty() && !write_all(fd_, buf_)) failed_ = true;
    }
    bool close() {
        flush();
        if (xlsx_) {
            std::string error;
            if (!xlsx_->close(error)) {
                std::cerr << "preflight-classify: " << error << "\n";
                failed_ = true;
            }
        }
        return !failed_;
    }
    bool failed() const { return failed_; }

private:
    TextRowWriter text_;
    std::optional<XlsxRowWriter> xlsx_;
    int fd_;
    std::string buf_;
    bool failed_ = false;
};

// Reads lines into the tracker and reports bad ones as FILE:LINE.
class LogReader {
public:
    explicit LogReader(DeliveryTracker& tracker) : tracker_(tracker) {}

    void start(const std::string& name, std::int64_t reference_time) {
        name_ = name == "-" ? std::string("stdin") : name;
        line_ = 0;
        ref_ = YearReference::from_time(reference_time);
    }
    void set_reference(std::int64_t t) { ref_ = YearReference::from_time(t); }

    void line(std::string_view text, bool too_long) {
        ++line_;
        if (too_long) return bad("line longer than 65536 bytes");
        if (text.empty()) return;
        std::string_view why;
        switch (parse_log_line(text, ref_, ev_, why)) {
        case LineResult::event: tracker_.add(ev_); break;
        case LineResult::ignored: break;
        case LineResult::not_a_log:
            bad(std::string("not a syslog, maillog_file or journalctl line (") + std::string(why) + ")");
            break;
        case LineResult::malformed: bad(std::string("malformed Postfix line: ") + std::string(why)); break;
        }
    }
    std::size_t bad_lines() const { return bad_; }
    void summary() const {
        if (bad_ > static_cast<std::size_t>(kMaxReported))
            std::cerr << "preflight-classify: " << bad_ - kMaxReported << " more bad lines not shown (" << bad_
                      << " in all)\n";
    }

private:
    void bad(const std::string& what) {
        if (++bad_ <= static_cast<std::size_t>(kMaxReported))
            std::cerr << "preflight-classify: " << name_ << ":" << line_ << ": " << what << "\n";
    }

    DeliveryTracker& tracker_;
    std::string name_;
    std::size_t line_ = 0, bad_ = 0;
    YearReference ref_;
    LogEvent ev_;
};

void sleep_poll() {
    struct timespec ts {
        0, kPollMillis * 1000000L
    };
    nanosleep(&ts, nullptr);  // a signal cuts it short, which is what we want
}

// Follows path after `in` reached its end: new lines, rotation (another inode at path: the
// rest of the old file is read, then the new one from its start), truncation (back to the
// start). Returns false on a read error.
bool follow(const std::string& path, std::unique_ptr<LogInput> in, LineSplitter& splitter,
            const LineSplitter::OnLine& on_line, LogReader& reader, Output& out) {
    std::string error;
    while (!g_stop && !out.failed()) {
        reader.set_reference(static_cast<std::int64_t>(std::time(nullptr)));
        if (splitter.pump(*in, on_line, error) < 0) {
            std::cerr << "preflight-classify: " << path << ": " << error << "\n";
            return false;
        }
        out.flush();
        struct stat st {};
        if (::stat(path.c_str(), &st) == 0) {
            if (st.st_ino != in->inode() || st.st_dev != in->device()) {
                // Rotated: drain what was appended to the old file in the meantime, then switch.
                if (splitter.pump(*in, on_line, error) < 0) {
                    std::cerr << "preflight-classify: " << path << ": " << error << "\n";
                    return false;
                }
                splitter.finish(on_line);
                std::unique_ptr<LogInput> next = LogInput::open(path, error);
                if (next && next->plain()) {
                    in = std::move(next);
                    reader.start(path, static_cast<std::int64_t>(std::time(nullptr)));
                    continue;  // read the new file at once
                }
                // Not readable (yet) or not plain: try again at the next poll.
            } else if (st.st_size < in->offset()) {
                splitter.finish(on_line);
                if (!in->rewind()) {
                    std::cerr << "preflight-classify: " << path << ": cannot seek back after truncation\n";
                    return false;
                }
                reader.start(path, static_cast<std::int64_t>(std::time(nullptr)));
                continue;
            } else if (st.st_size > in->offset()) {
                continue;  // grew meanwhile
            }
        }
        sleep_poll();
    }
    return true;
}

// The options of args into o, checked against each other. Nothing to go on, else the exit
// status (0 after --help, 2 for a usage error, written to stderr).
std::optional<int> parse_options(const std::vector<std::string>& args, bool can_read_dsn, Options& o) {
    using Why = std::optional<std::string>;
    ArgParser parser("log", kUsage);
    parser
        .option({"--format"},
                [&](const std::string& v) -> Why {
                    if (v == "csv") o.format = RowFormat::csv;
                    else if (v == "json") o.format = RowFormat::json;
                    else if (v == "xlsx") o.format = RowFormat::xlsx;
                    else return "want csv, json or xlsx";
                    return std::nullopt;
                })
        .option({"--output", "-o"},
                [&](const std::string& v) -> Why {
                    if (v.empty()) return "want a file name";
                    o.output = v;
                    return std::nullopt;
                })
        .flag({"--wide"}, [&] { o.wide = true; })
        .flag({"--raw"}, [&] { o.raw = true; })
        .flag({"--follow", "-f"}, [&] { o.follow = true; })
        .option({"--dsn"},
                [&](const std::string& v) -> Why {
                    if (!can_read_dsn) return "this build reads no bounce reports";
                    o.dsn_dirs.push_back(v);
                    return std::nullopt;
                })
        .option({"--rules"}, append_to(o.rules))
        .option({"--queue-lifetime"},
                [&](const std::string& v) -> Why {
                    // A bare number is days, as in Postfix's maximal_queue_lifetime.
                    auto d = parse_duration(v, BareNumber::days);
                    if (!d || d->count() < 1000) return "want a time such as 5d, 12h or 3600s";
                    o.tracker.queue_lifetime = std::chrono::duration_cast<std::chrono::seconds>(*d).count();
                    return std::nullopt;
                })
        .option({"--max-open"}, whole_number(o.tracker.max_open, 1, SIZE_MAX, "a positive number"))
        .flag({"--suppress"}, [&] { o.suppress = true; })
        .option({"--conf"}, store_in(o.conf))
        .positional([&](const std::string& f) { o.files.push_back(f); });
    if (auto status = parser.parse(args)) return *status;
    if (o.files.empty()) o.files.push_back("-");
    if (o.raw && o.format != RowFormat::csv)
        return usage_error(
            "--raw applies to csv only: json is always written as the values came, and xlsx "
            "cells are text, never formulas");
    if (o.follow) {
        if (o.format == RowFormat::xlsx) return usage_error("--follow writes rows as they come: use csv or json");
        if (o.files.back() == "-") return usage_error("--follow needs a MAILLOG file to follow, not stdin");
    }
    if (o.format == RowFormat::xlsx && o.output.empty() && ::isatty(STDOUT_FILENO))
        return usage_error("--format xlsx writes a binary file: give --output FILE or redirect stdout");

    return std::nullopt;
}

}  // namespace

int run_log_command(const std::vector<std::string>& args, const DsnLoader& load_dsn) {
    Options o;
    if (auto status = parse_options(args, static_cast<bool>(load_dsn), o)) return *status;

    std::shared_ptr<const RuleSet> rules = load_rules(o.rules);
    if (!rules) return 2;
    ReplyClassifier classifier(rules);
    std::unique_ptr<SuppressSink> suppress;
    if (o.suppress) {
        std::string error;
        std::unique_ptr<SuppressionFeed> feed = open_suppression_feed(o.conf, error);
        if (!feed) {
            std::cerr << "preflight-classify: " << error << "\n";
            return 2;
        }
        suppress = std::make_unique<SuppressSink>(std::move(feed));
    }

    StagedOutput destination;
    if (std::string error; !destination.open(o.output, o.follow, o.format == RowFormat::xlsx, error)) {
        std::cerr << "preflight-classify: " << error << "\n";
        return 1;
    }
    Output out(o, destination.fd());
    if (o.format == RowFormat::xlsx) {
        try {
            out.open_xlsx(destination.xlsx_path(), o.wide);
        } catch (const std::exception& e) {
            std::cerr << "preflight-classify: " << e.what() << "\n";
            return 1;
        }
    }
    out.header();

    std::vector<DsnRecord> dsn;
    for (const auto& dir : o.dsn_dirs) {
        std::string error;
        if (!load_dsn(dir, dsn, error)) {
            std::cerr << "preflight-classify: " << error << "\n";
            return 1;
        }
    }
    DsnJoin join(std::move(dsn));
    std::string scratch;
    DeliveryTracker tracker(classifier, o.tracker, [&](DeliveryRow& row) {
        join.apply(row, classifier, scratch);
        out.row(row);
        if (suppress) suppress->delivery(row);
    });
    LogReader reader(tracker);
    LineSplitter splitter;
    const LineSplitter::OnLine on_line = [&](std::string_view line, bool too_long) { reader.line(line, too_long); };

    if (o.follow) {
        struct sigaction sa {};
        sa.sa_handler = on_stop_signal;
        sigemptyset(&sa.sa_mask);
        sigaction(SIGINT, &sa, nullptr);
        sigaction(SIGTERM, &sa, nullptr);
    }

    bool input_ok = true;
    for (std::size_t i = 0; i < o.files.size() && !out.failed() && !g_stop; ++i) {
        const std::string& path = o.files[i];
        std::string error;
        std::unique_ptr<LogInput> in = LogInput::open(path, error);
        if (!in) {
            std::cerr << "preflight-classify: " << error << "\n";
            input_ok = false;
            continue;
        }
        bool last = i + 1 == o.files.size();
        if (o.follow && last) {
            if (!in->plain()) {
                std::cerr << "preflight-classify: " << path << ": --follow needs a plain (not gzip) file\n";
                input_ok = false;
                break;
            }
            reader.start(path, static_cast<std::int64_t>(std::time(nullptr)));
            if (!follow(path, std::move(in), splitter, on_line, reader, out)) input_ok = false;
            splitter.finish(on_line);
            break;
        }
        reader.start(path, in->mtime());
        if (splitter.pump(*in, on_line, error) < 0) {
            std::cerr << "preflight-classify: " << (path == "-" ? std::string("stdin") : path) << ": " << error << "\n";
            input_ok = false;
        }
        splitter.finish(on_line);
    }
    if (!o.follow) tracker.finish();  // what is still deferred at the end of the log
    reader.summary();
    if (suppress) suppress->summary();
    if (suppress && suppress->failed()) input_ok = false;
    std::string error;
    const bool out_ok = destination.finish(out.close(), error);
    if (!error.empty()) std::cerr << "preflight-classify: " << error << "\n";
    return out_ok && input_ok && reader.bad_lines() == 0 ? 0 : 1;
}

}  // namespace preflight
