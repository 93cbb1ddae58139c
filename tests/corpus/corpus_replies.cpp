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

#include "reply_classifier.hpp"

using namespace preflight;

namespace {

std::vector<std::string> split(const std::string& s, char sep) {
    std::vector<std::string> out;
    std::string cur;
    std::stringstream ss(s);
    while (std::getline(ss, cur, sep)) out.push_back(cur);
    if (!s.empty() && s.back() == sep) out.emplace_back();
    return out;
}

bool starts_with_nocase(const std::string& s, const char* p) {
    std::size_t n = std::char_traits<char>::length(p);
    if (s.size() < n) return false;
    for (std::size_t i = 0; i < n; ++i)
        if (std::tolower(static_cast<unsigned char>(s[i])) != std::tolower(static_cast<unsigned char>(p[i]))) return false;
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
        if (starts_with_nocase(l, "Content-Type: message/rfc822") || starts_with_nocase(l, "Content-Type: text/rfc822-headers") ||
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

struct MapRow {
    std::string status, bounce;
    std::set<std::string> categories;
};

double pct(int a, int b) { return b ? 100.0 * a / b : 100.0; }

}  // namespace

int main(int argc, char** argv) {
    std::string dir = argc > 1 ? argv[1] : "../shared/corpus/bounces";
    double floor_category = argc > 2 ? std::stod(argv[2]) : 91, floor_bounce = argc > 3 ? std::stod(argv[3]) : 94,
           floor_code = argc > 4 ? std::stod(argv[4]) : 68;
    std::ifstream exp(dir + "/expected.tsv"), cmap(dir + "/category-map.tsv");
    if (!exp || !cmap) {
        std::cout << "corpus not found at " << dir << " (expected.tsv, category-map.tsv): skipped\n";
        return 77;
    }
    std::map<std::string, MapRow> reasons;
    std::string line;
    while (std::getline(cmap, line)) {
        if (line.empty() || line[0] == '#') continue;
        auto f = split(line, '\t');
        if (f.size() < 3) continue;
        MapRow m{f[1], f[2], {}};
        if (f.size() > 3)
            for (auto& c : split(f[3], ',')) if (!c.empty()) m.categories.insert(c);
        reasons[f[0]] = m;
    }

    ReplyClassifier cl(RuleSetBuilder().add_shipped().build());
    std::string scratch;
    int rows = 0, cat_rows = 0, cat_ok = 0, bounce_rows = 0, bounce_ok = 0, code_rows = 0, code_ok = 0, missed = 0;
    std::map<std::string, Extracted> cache;
    std::map<std::string, int> misses_by_reason;
    bool verbose = std::getenv("CORPUS_VERBOSE") != nullptr;
    std::getline(exp, line);  // header
    while (std::getline(exp, line)) {
        auto f = split(line, '\t');
        if (f.size() < 6) continue;
        ++rows;
        const std::string &file = f[0], &status = f[2], &reason = f[4];
        int idx = std::stoi(f[1]);
        auto it = cache.find(file);
        if (it == cache.end()) it = cache.emplace(file, scan(dir + "/eml/" + file)).first;
        const Extracted& ex = it->second;
        std::string reply;
        if (static_cast<std::size_t>(idx) <= ex.diagnostics.size()) reply = ex.diagnostics[static_cast<std::size_t>(idx) - 1];
        else if (!ex.diagnostics.empty()) reply = ex.diagnostics.back();
        else reply = ex.body;
        std::string st = static_cast<std::size_t>(idx) <= ex.statuses.size() ? ex.statuses[static_cast<std::size_t>(idx) - 1]
                                                                             : (ex.statuses.empty() ? "" : ex.statuses.back());
        Classification c = cl.classify(reply, Origin::remote, scratch);
        // The DSN's Status field gives the enhanced code when the diagnostic text has none.
        EnhancedCode status_code;
        if (!c.enhanced && parse_enhanced_code(st, status_code)) c.enhanced = status_code;
        if (c.error != Classification::Error::none && status_code) {
            c = cl.classify(st + " " + reply, Origin::remote, scratch);
        }
        if (c.error != Classification::Error::none) {
            ++missed;
            if (verbose) std::cout << "MISS " << file << " " << reason << "\n";
            continue;
        }
        auto mit = reasons.find(reason);
        if (mit == reasons.end()) continue;
        const MapRow& m = mit->second;
        std::string cat(to_string(c.category)), bounce(to_string(c.bounce));
        if (!m.categories.empty()) {
            ++cat_rows;
            bool ok = m.categories.count(cat) > 0;
            cat_ok += ok;
            if (!ok) ++misses_by_reason[reason];
            if (!ok && verbose)
                std::cout << "CAT  " << file << " want " << reason << " got " << cat << " ("
                          << (c.rule ? c.rule->location : "-") << ") " << reply.substr(0, 160) << "\n";
        }
        ++bounce_rows;
        bool bok = m.bounce == "either" ? (bounce == "hard" || bounce == "soft")
                 : m.bounce == "none" ? bounce != "hard" : bounce == m.bounce;
        if (reason == "feedback" || reason == "vacation") bok = bounce != "hard";
        bounce_ok += bok;
        if (!bok && verbose) std::cout << "BNC  " << file << " want " << m.bounce << " got " << bounce << "\n";
        EnhancedCode want;
        if (!status.empty() && parse_enhanced_code(status, want)) {
            ++code_rows;
            bool ok = want.detail >= 900 && want.subject == 0 ? c.enhanced.cls == want.cls : c.enhanced == want;
            code_ok += ok;
        }
    }
    std::printf("corpus %s: %d rows, %d with no reply found\n", dir.c_str(), rows, missed);
    std::printf("  category agreement  %5.1f%% (%d/%d)\n", pct(cat_ok, cat_rows), cat_ok, cat_rows);
    std::printf("  hard/soft agreement %5.1f%% (%d/%d)\n", pct(bounce_ok, bounce_rows), bounce_ok, bounce_rows);
    std::printf("  enhanced code       %5.1f%% (%d/%d)\n", pct(code_ok, code_rows), code_ok, code_rows);
    std::printf("  category misses by reason:");
    for (auto& [r, n] : misses_by_reason) std::printf(" %s=%d", r.c_str(), n);
    std::printf("\n");
    bool ok = pct(cat_ok, cat_rows) >= floor_category && pct(bounce_ok, bounce_rows) >= floor_bounce &&
              pct(code_ok, code_rows) >= floor_code;
    if (!ok) std::printf("below the floors (category %.0f%%, hard/soft %.0f%%, code %.0f%%)\n", floor_category, floor_bounce, floor_code);
    return ok ? 0 : 1;
}
