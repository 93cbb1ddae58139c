// Scores the reply classifier on the labelled public bounce corpus (../shared/corpus/bounces),
// using only a simple header scan to pull a reply out of each bounce: the recipient's
// Diagnostic-Code (with its Status), else the bounce's body text before the returned message.
// Full DSN parsing is preflight-classify dsn's job; this measures the rules, not the parser.
// Prints the four agreement figures and fails when they fall below the floors given on the
// command line (defaults below), so a rule change that makes things worse does not land.
// Exit 77 (ctest: skipped) when the corpus is absent.
#include <cstdio>
#include <fstream>
#include <iostream>
#include <map>
#include <set>
#include <sstream>
#include <string>
#include <vector>

#include "corpus_scoring.hpp"
#include "reply_classifier.hpp"

using namespace preflight;

namespace {

bool starts_with_nocase(const std::string& s, const char* p) {
    std::size_t n = std::char_traits<char>::length(p);
    if (s.size() < n) return false;
    for (std::size_t i = 0; i < n; ++i)
        if (std::tolower(static_cast<unsigned char>(s[i])) != std::tolower(static_cast<unsigned char>(p[i])))
            return false;
    return true;
}

struct Extracted {
    std::vector<std::string> diagnostics, statuses;
    std::string body;  // body text before the returned message, lines joined by spaces
};

Extracted scan(const std::string& path) {
    Extracted ex;
    std::ifstream in(path, std::ios::binary);
    std::string line;
    std::vector<std::string> lines;
    while (std::getline(in, line)) {
        if (!line.empty() && line.back() == '\r') line.pop_back();
        lines.push_back(line);
    }
    bool in_headers = true, body_done = false;
    std::string* open_field = nullptr;
    for (std::size_t i = 0; i < lines.size(); ++i) {
        const std::string& l = lines[i];
        if (open_field && !l.empty() && (l[0] == ' ' || l[0] == '\t')) {
            *open_field += " " + l;
            continue;
        }
        open_field = nullptr;
        if (starts_with_nocase(l, "Diagnostic-Code:")) {
            ex.diagnostics.push_back(l);
            open_field = &ex.diagnostics.back();
        } else if (starts_with_nocase(l, "Status:")) {
            std::string v = l.substr(7);
            while (!v.empty() && (v[0] == ' ' || v[0] == '\t')) v.erase(0, 1);
            v = v.substr(0, v.find_first_of(" \t("));
            EnhancedCode e;
            if (parse_enhanced_code(v, e)) ex.statuses.push_back(v);  // not an mbox "Status: RO
        }
        if (in_headers) {
            if (l.empty()) in_headers = false;
            else if (starts_with_nocase(l, "Subject:")) ex.body += l.substr(8) + " ";
            continue;
        }
        if (body_done) continue;
        if (starts_with_nocase(l, "Content-Type: message/rfc822") ||
            starts_with_nocase(l, "Content-Type: text/rfc822-headers") ||
            l.find("This is a copy of the message") != std::string::npos ||
            l.find("Below this line is a copy") != std::string::npos ||
            starts_with_nocase(l, "------ Original message") || starts_with_nocase(l, "----- Original message") ||
            starts_with_nocase(l, "Return-Path:") || starts_with_nocase(l, "Received:")) {
            body_done = true;  // the returned message follows; its DSN fields may still come
            continue;
        }
        if (ex.body.size() < 4096) ex.body += l + " ";
    }
    return ex;
}

}  // namespace

int main(int argc, char** argv) {
    std::string dir = argc > 1 ? argv[1] : "../shared/corpus/bounces";
    // Floors: the figures measured with refused rows counted as misses, rounded down (287, 300
    // and 216 rows right since "no valid recipients" stopped proving an unknown user: Postfix
    // answers DATA so when every RCPT was refused, for any reason).
    double floor_category = argc > 2 ? std::stod(argv[2]) : 91, floor_bounce = argc > 3 ? std::stod(argv[3]) : 90,
           floor_code = argc > 4 ? std::stod(argv[4]) : 69;
    corpus::Corpus corpus;
    if (auto status = corpus::load_or_exit_status(dir, corpus)) return *status;

    ReplyClassifier cl(RuleSetBuilder().add_shipped().build());
    std::string scratch;
    std::map<std::string, Extracted> cache;
    corpus::FoldedScore folds(std::getenv("CORPUS_VERBOSE") != nullptr);
    for (const corpus::ExpectedRow& row : corpus.rows) {
        auto it = cache.find(row.file);
        if (it == cache.end()) it = cache.emplace(row.file, scan(dir + "/eml/" + row.file)).first;
        const Extracted& ex = it->second;
        auto idx = static_cast<std::size_t>(row.index);
        std::string reply;
        if (idx <= ex.diagnostics.size()) reply = ex.diagnostics[idx - 1];
        else if (!ex.diagnostics.empty()) reply = ex.diagnostics.back();
        else reply = ex.body;
        std::string st =
            idx <= ex.statuses.size() ? ex.statuses[idx - 1] : (ex.statuses.empty() ? "" : ex.statuses.back());
        Classification c = cl.classify(reply, Origin::remote, scratch);
        // The DSN's Status field gives the enhanced code when the diagnostic text has none.
        EnhancedCode status_code;
        if (!c.enhanced && parse_enhanced_code(st, status_code)) c.enhanced = status_code;
        if (c.error != Classification::Error::none && status_code) {
            c = cl.classify(st + " " + reply, Origin::remote, scratch);
        }
        corpus::Answer a;
        a.found = c.error == Classification::Error::none;
        a.category = to_string(c.category);
        a.bounce = to_string(c.bounce);
        a.enhanced = c.enhanced;
        a.detail = "(" + (c.rule ? c.rule->location : std::string("-")) + ") " + reply.substr(0, 160);
        folds.add(corpus, row, a);
    }
    folds.print(dir, false);
    const corpus::Score& score = folds.all();
    bool ok = score.enough_rows(corpus) && score.category_pct() >= floor_category &&
              score.bounce_pct() >= floor_bounce && score.code_pct() >= floor_code;
    if (!ok)
        std::printf("below the floors (category %.0f%%, hard/soft %.0f%%, code %.0f%%)\n", floor_category, floor_bounce,
                    floor_code);
    return ok ? 0 : 1;
}
