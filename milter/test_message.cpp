// preflight-milter --test-message (see test_message.hpp).
#include "test_message.hpp"

#include "ascii.hpp"
#include "json_string.hpp"
#include "message_session.hpp"
#include "reply_table.hpp"

#include <fstream>
#include <iostream>
#include <sstream>

namespace preflight {
namespace {

constexpr std::uintmax_t kMaxFile = 1ull << 30;  // far above any MaxMessageSize worth sending
constexpr std::size_t kBodyChunk = 64 * 1024;    // Postfix hands the body over in chunks like these

// One stage of the transaction and the verdicts of the checks that ran in it.
struct Stage {
    std::string name;  // "MAIL FROM", "RCPT TO", "end of message"
    std::string address;
    Verdict verdict;
    std::vector<Verdict> checks;
};

bool refused(const Verdict& v) { return !v.accepted(); }

std::string result_word(const Verdict& v) {
    if (v.dry_run) return "dry-run (would " + std::string(to_string(v.would)) + ")";
    return std::string(to_string(v.action));
}

void write_text(const std::vector<Stage>& stages, const std::vector<TagHeader>& tags, const std::string& note,
                bool any_refused, std::ostream& out) {
    for (const Stage& st : stages) {
        out << st.name << (st.address.empty() ? "" : " <" + st.address + ">") << ": " << result_word(st.verdict);
        if (refused(st.verdict)) out << ": " << reply_text(render(st.verdict));
        out << "\n";
        for (const Verdict& c : st.checks) {
            out << "  check " << c.check << ": " << result_word(c);
            if (c.reply != ReplyId::none) out << ": " << reply_text(render(c));
            out << "\n";
        }
    }
    for (const TagHeader& h : tags) out << "header " << h.name << ": " << h.value << "\n";
    if (!note.empty()) out << note << "\n";
    out << "result: " << (any_refused ? "refused" : "accepted") << "\n";
}

void write_json(const std::vector<Stage>& stages, const std::vector<TagHeader>& tags, const std::string& note,
                bool any_refused, std::ostream& out) {
    std::string j = "{\"result\": ";
    append_json_string(j, any_refused ? "refused" : "accepted");
    j += ", \"stages\": [";
    for (std::size_t i = 0; i < stages.size(); ++i) {
        const Stage& st = stages[i];
        j += i ? ", {\"stage\": " : "{\"stage\": ";
        append_json_string(j, st.name);
        if (!st.address.empty()) {
            j += ", \"address\": ";
            append_json_string(j, st.address);
        }
        j += ", \"action\": ";
        append_json_string(j, to_string(st.verdict.action));
        if (refused(st.verdict)) {
            j += ", \"reply\": ";
            append_json_string(j, reply_text(render(st.verdict)));
        }
        j += ", \"checks\": [";
        for (std::size_t k = 0; k < st.checks.size(); ++k) {
            const Verdict& c = st.checks[k];
            j += k ? ", {\"check\": " : "{\"check\": ";
            append_json_string(j, c.check);
            j += ", \"action\": ";
            append_json_string(j, to_string(c.action));
            j += ", \"would\": ";
            append_json_string(j, to_string(c.would));
            j += c.dry_run ? ", \"dry_run\": true" : ", \"dry_run\": false";
            if (c.reply != ReplyId::none) {
                j += ", \"reply\": ";
                append_json_string(j, reply_text(render(c)));
            }
            j += "}";
        }
        j += "]}";
    }
    j += "], \"headers\": [";
    for (std::size_t i = 0; i < tags.size(); ++i) {
        j += i ? ", {\"name\": " : "{\"name\": ";
        append_json_string(j, tags[i].name);
        j += ", \"value\": ";
        append_json_string(j, tags[i].value);
        j += "}";
    }
    j += "]";
    if (!note.empty()) {
        j += ", \"note\": ";
        append_json_string(j, note);
    }
    out << j << "}\n";
}

std::string bracketed(std::string_view a) {
    if (a.size() >= 2 && a.front() == '<' && a.back() == '>') return std::string(a);
    std::string out(1, '<');
    out.append(a).append(1, '>');
    return out;
}

bool read_file(const std::string& path, std::string& text, std::ostream& err) {
    std::ifstream in(path, std::ios::binary);
    if (!in) {
        err << "preflight-milter: --test-message: cannot read " << path << "\n";
        return false;
    }
    std::ostringstream buf;
    buf << in.rdbuf();
    text = std::move(buf).str();
    if (in.bad() || text.size() > kMaxFile) {
        err << "preflight-milter: --test-message: " << path << (in.bad() ? ": read error" : ": larger than 1 GiB")
            << "\n";
        return false;
    }
    return true;
}

}  // namespace

SplitMessage split_message(std::string_view text) {
    SplitMessage m;
    std::size_t pos = 0;
    auto next_line = [&]() {
        std::size_t nl = text.find('\n', pos);
        std::string_view line = text.substr(pos, nl == std::string_view::npos ? nl : nl - pos);
        pos = nl == std::string_view::npos ? text.size() : nl + 1;
        if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
        return line;
    };
    if (text.starts_with("From ")) next_line();  // mbox separator
    while (pos < text.size()) {
        const std::size_t start = pos;
        std::string_view line = next_line();
        if (line.empty()) break;  // the blank line ends the headers
        if (ascii::is_hspace(line.front()) && !m.headers.empty()) {
            m.headers.back().second.append("\n").append(line);
            continue;
        }
        const std::size_t colon = line.find(':');
        const std::string_view name = colon == std::string_view::npos ? line : ascii::trim(line.substr(0, colon));
        if (colon == std::string_view::npos || name.empty() || name.find(' ') != std::string_view::npos) {
            pos = start;  // not a header line: the body starts here, as Postfix's cleanup sees it
            break;
        }
        m.headers.emplace_back(std::string(name), std::string(line.substr(colon + 1)));
    }
    m.body.reserve(text.size() - pos + (text.size() - pos) / 32);
    while (pos < text.size()) m.body.append(next_line()).append("\r\n");
    return m;
}

int run_test_message(const TestMessageRequest& req, std::shared_ptr<const Config> config, Resolver& resolver,
                     std::ostream& out, std::ostream& err) {
    std::string text;
    if (!read_file(req.file, text, err)) return 2;
    const SplitMessage msg = split_message(text);

    MilterServices services;
    services.resolver = &resolver;
    for (const IpAddress& ip : config->global().egress_addresses) services.egress_ips.push_back(ip.to_string());
    services.record_decisions = true;
    const std::string note =
        config->any_quota() ? "quota: not checked (--test-message reserves nothing in QuotaStore)" : "";
    services.config = std::move(config);

    MessageSession session(services);
    std::vector<Stage> stages;
    std::size_t seen = 0;
    auto stage = [&](std::string name, std::string address, Verdict v) {
        const auto& d = session.decisions();
        stages.push_back({std::move(name), std::move(address), std::move(v), {d.begin() + seen, d.end()}});
        seen = d.size();
        return refused(stages.back().verdict);
    };
    bool any_refused = stage("MAIL FROM", req.from, session.mail_from(bracketed(req.from), {}));
    if (!any_refused) {
        unsigned accepted = 0;
        for (const std::string& r : req.rcpts) {
            const bool no = stage("RCPT TO", r, session.rcpt_to(bracketed(r)));
            any_refused = any_refused || no;
            accepted += no ? 0 : 1;
        }
        if (req.rcpts.empty() || accepted > 0) {
            for (const auto& [name, value] : msg.headers) session.header(name, value);
            session.end_of_headers();
            std::string_view body = msg.body;
            for (std::size_t at = 0; at < body.size(); at += kBodyChunk) session.body(body.substr(at, kBodyChunk));
            const bool no = stage("end of message", "", session.end_of_message());
            any_refused = any_refused || no;
        }
    }
    const std::vector<TagHeader> tags = any_refused ? std::vector<TagHeader>{} : session.tag_headers();
    if (req.json) write_json(stages, tags, note, any_refused, out);
    else write_text(stages, tags, note, any_refused, out);
    return any_refused ? 1 : 0;
}

}  // namespace preflight
