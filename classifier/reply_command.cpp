#include "reply_command.hpp"

#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <iostream>

#include "output.hpp"
#include "reply_classifier.hpp"

namespace preflight {
namespace {

constexpr std::size_t kMaxReplyBytes = 64 * 1024;  // far above RFC 5321's 512-byte reply lines
constexpr std::size_t kReadChunk = 1 << 20;
constexpr std::size_t kFlushAt = 1 << 20;

const char kUsage[] =
    "usage: preflight-classify reply [--format json|text|tsv] [--rules FILE]... [--origin remote|edge] [REPLY...]\n"
    "  Classifies SMTP replies. REPLY words are joined into one reply; without them, stdin is\n"
    "  read, one reply per line, and one result is written per line in the same order.\n"
    "  --format   json (JSON Lines; default when stdout is not a terminal), text, tsv\n"
    "  --rules    site rule file, evaluated before the shipped rules (repeatable)\n"
    "  --origin   edge: the replies come from our own relay edge (status 'rejected')\n"
    "exit: 0 all classified, 1 some could not be classified, 2 usage or rule file error\n";

bool write_all(std::string& out) {
    const char* p = out.data();
    std::size_t left = out.size();
    while (left) {
        ssize_t n = ::write(STDOUT_FILENO, p, left);
        if (n < 0) {
            if (errno == EINTR) continue;
            std::cerr << "preflight-classify: write error: " << std::strerror(errno) << "\n";
            return false;
        }
        p += n;
        left -= static_cast<std::size_t>(n);
    }
    out.clear();
    return true;
}

struct Session {
    const ReplyClassifier& classifier;
    ResultWriter writer;
    Origin origin;
    std::string out, scratch;
    bool all_classified = true;

    void one(std::string_view reply, std::size_t line) {
        Classification c = classifier.classify(reply, origin, scratch);
        if (c.error != Classification::Error::none) {
            writer.error(out, reply, c.error_text(), line);
            all_classified = false;
        } else {
            writer.result(out, reply, c);
        }
    }
    void too_long(std::size_t line) {
        writer.error(out, "", "reply longer than 65536 bytes", line);
        all_classified = false;
    }
};

// Streams stdin line by line in constant memory: complete lines are classified straight from
// the read buffer; only a line split across reads is copied, and never beyond kMaxReplyBytes.
bool classify_stream(Session& s) {
    std::string buf(kReadChunk, '\0');
    std::string carry;
    bool carry_too_long = false;
    std::size_t line = 0;
    for (;;) {
        ssize_t n = ::read(STDIN_FILENO, buf.data(), buf.size());
        if (n < 0) {
            if (errno == EINTR) continue;
            std::cerr << "preflight-classify: read error on stdin: " << std::strerror(errno) << "\n";
            return false;
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
            ++line;
            if (carry_too_long || carry.size() + piece.size() > kMaxReplyBytes) {
                s.too_long(line);
            } else if (!carry.empty()) {
                carry.append(piece);
                s.one(carry, line);
            } else {
                s.one(piece, line);
            }
            carry.clear();
            carry_too_long = false;
            if (s.out.size() >= kFlushAt && !write_all(s.out)) return false;
        }
        // Flush after every read so that a slow producer (tail -f) sees results promptly.
        if (!write_all(s.out)) return false;
    }
    if (carry_too_long) s.too_long(++line);
    else if (!carry.empty()) s.one(carry, ++line);
    return write_all(s.out);
}

}  // namespace

int run_reply_command(const std::vector<std::string>& args) {
    Format format = ::isatty(STDOUT_FILENO) ? Format::text : Format::json;
    Origin origin = Origin::remote;
    std::vector<std::string> rule_files, words;
    for (std::size_t i = 0; i < args.size(); ++i) {
        const std::string& a = args[i];
        auto value = [&](const char* opt) -> const std::string* {
            if (i + 1 >= args.size()) {
                std::cerr << "preflight-classify reply: " << opt << " needs a value\n" << kUsage;
                return nullptr;
            }
            return &args[++i];
        };
        if (a == "-h" || a == "--help") {
            std::cout << kUsage;
            return 0;
        } else if (a == "--format") {
            const std::string* v = value("--format");
            if (!v) return 2;
            if (*v == "json") format = Format::json;
            else if (*v == "tsv") format = Format::tsv;
            else if (*v == "text") format = Format::text;
            else {
                std::cerr << "preflight-classify reply: --format " << *v << ": want json, text or tsv\n";
                return 2;
            }
        } else if (a == "--rules") {
            const std::string* v = value("--rules");
            if (!v) return 2;
            rule_files.push_back(*v);
        } else if (a == "--origin") {
            const std::string* v = value("--origin");
            if (!v) return 2;
            if (*v == "remote") origin = Origin::remote;
            else if (*v == "edge") origin = Origin::edge;
            else {
                std::cerr << "preflight-classify reply: --origin " << *v << ": want remote or edge\n";
                return 2;
            }
        } else if (a == "--") {
            words.insert(words.end(), args.begin() + static_cast<std::ptrdiff_t>(i) + 1, args.end());
            break;
        } else if (a.size() > 1 && a[0] == '-' && a[1] == '-') {
            std::cerr << "preflight-classify reply: unknown option " << a << "\n" << kUsage;
            return 2;
        } else {
            words.push_back(a);
        }
    }

    std::shared_ptr<const RuleSet> rules;
    try {
        RuleSetBuilder builder;
        for (const auto& f : rule_files) builder.add_file(f);
        rules = builder.add_shipped().build();
    } catch (const RuleError& e) {
        std::cerr << "preflight-classify: " << e.what() << "\n";
        return 2;
    }
    ReplyClassifier classifier(rules);
    Session s{classifier, ResultWriter(format), origin, {}, {}};
    s.writer.header(s.out);
    if (!words.empty()) {
        std::string reply;
        for (const auto& w : words) {
            if (!reply.empty()) reply.push_back(' ');
            reply.append(w);
        }
        if (reply.size() > kMaxReplyBytes) s.too_long(1);
        else s.one(reply, 1);
        if (!write_all(s.out)) return 1;
    } else if (!classify_stream(s)) {
        return 1;
    }
    return s.all_classified ? 0 : 1;
}

}  // namespace preflight
