#include "corpus_scoring.hpp"

#include <cstdint>
#include <cstdio>
#include <fstream>
#include <iostream>
#include <sstream>
#include <stdexcept>

namespace preflight::corpus {
namespace {
double pct(int a, int b) { return b ? 100.0 * a / b : 0.0; }
}  // namespace

std::vector<std::string> split(const std::string& s, char sep) {
    std::vector<std::string> out;
    std::string cur;
    std::stringstream ss(s);
    while (std::getline(ss, cur, sep)) out.push_back(cur);
    if (!s.empty() && s.back() == sep) out.emplace_back();
    return out;
}

bool load(const std::string& dir, Corpus& out) {
    std::ifstream exp(dir + "/expected.tsv"), cmap(dir + "/category-map.tsv");
    if (!exp || !cmap) return false;
    std::string line;
    while (std::getline(cmap, line)) {
        if (line.empty() || line[0] == '#') continue;
        auto f = split(line, '\t');
        if (f.size() < 3) continue;
        ReasonMap m{f[1], f[2], {}};
        if (f.size() > 3)
            for (auto& c : split(f[3], ','))
                if (!c.empty()) m.categories.insert(c);
        out.reasons[f[0]] = m;
    }
    std::getline(exp, line);  // header
    int lineno = 1;
    while (std::getline(exp, line)) {
        ++lineno;
        if (line.empty()) continue;
        auto f = split(line, '\t');
        int index = 0;
        if (f.size() >= 6 && !f[1].empty() && f[1].find_first_not_of("0123456789") == std::string::npos &&
            f[1].size() < 6)
            index = std::stoi(f[1]);
        if (index < 1)
            throw std::runtime_error(
                dir + "/expected.tsv:" + std::to_string(lineno) +
                ": expected file, a recipient index from 1, status, replycode, reason, hardbounce");
        out.rows.push_back({f[0], index, f[2], f[3], f[4]});
    }
    return true;
}

std::optional<int> load_or_exit_status(const std::string& dir, Corpus& out) {
    try {
        if (load(dir, out)) return std::nullopt;
        std::cout << "corpus not found at " << dir << " (expected.tsv, category-map.tsv): skipped\n";
        return 77;
    } catch (const std::exception& e) {
        std::cout << e.what() << "\n";
        return 1;
    }
}

void Score::add(const Corpus& c, const ExpectedRow& row, const Answer& a) {
    ++rows_;
    auto mit = c.reasons.find(row.reason);
    EnhancedCode want;
    bool has_code = !row.status.empty() && parse_enhanced_code(row.status, want);
    if (!a.found) {
        if (verbose_)
            std::cout << "MISS " << row.file << " #" << row.index << " " << row.reason << " " << a.detail << "\n";
        if (mit != c.reasons.end()) {
            if (!mit->second.categories.empty()) ++cat_rows_, ++misses_by_reason_[row.reason];
            ++bounce_rows_;
            if (has_code) ++code_rows_;
        }
        return;
    }
    ++found_;
    if (mit == c.reasons.end()) return;
    const ReasonMap& m = mit->second;
    if (!m.categories.empty()) {
        ++cat_rows_;
        bool ok = m.categories.count(a.category) > 0;
        cat_ok_ += ok;
        if (!ok) ++misses_by_reason_[row.reason];
        if (!ok && verbose_)
            std::cout << "CAT  " << row.file << " #" << row.index << " want " << row.reason << " got " << a.category
                      << " " << a.detail << "\n";
    }
    ++bounce_rows_;
    bool bok = m.bounce == "either" ? (a.bounce == "hard" || a.bounce == "soft")
               : m.bounce == "none" ? a.bounce != "hard"
                                    : a.bounce == m.bounce;
    if (row.reason == "feedback" || row.reason == "vacation") bok = a.bounce != "hard";
    bounce_ok_ += bok;
    if (!bok && verbose_)
        std::cout << "BNC  " << row.file << " #" << row.index << " want " << m.bounce << " (" << row.reason << ") got "
                  << a.bounce << " " << a.detail << "\n";
    if (has_code) {
        ++code_rows_;
        bool ok = want.detail >= 900 && want.subject == 0 ? a.enhanced.cls == want.cls : a.enhanced == want;
        code_ok_ += ok;
        if (!ok && verbose_) {
            char buf[12];
            std::string got(buf, a.enhanced ? a.enhanced.format(buf) : 0);
            std::cout << "CODE " << row.file << " #" << row.index << " want " << row.status << " got " << got << " "
                      << a.detail << "\n";
        }
    }
}

double Score::found_pct() const { return pct(found_, rows_); }
double Score::category_pct() const { return pct(cat_ok_, cat_rows_); }
double Score::bounce_pct() const { return pct(bounce_ok_, bounce_rows_); }
double Score::code_pct() const { return pct(code_ok_, code_rows_); }

char fold_of(const std::string& file) {
    std::uint32_t h = 2166136261u;
    for (unsigned char ch : file) h = (h ^ ch) * 16777619u;
    return h % 2 == 0 ? 'A' : 'B';
}

void Score::print_line(const std::string& label, bool print_found) const {
    std::printf("  %s (%d rows):", label.c_str(), rows_);
    if (print_found) std::printf(" recipients %.1f%%", found_pct());
    std::printf(" category %.1f%% (%d/%d), hard/soft %.1f%% (%d/%d), code %.1f%% (%d/%d)\n", category_pct(), cat_ok_,
                cat_rows_, bounce_pct(), bounce_ok_, bounce_rows_, code_pct(), code_ok_, code_rows_);
}

void FoldedScore::print(const std::string& dir, bool print_found) const {
    all_.print(dir, print_found);
    a_.print_line("fold A, worked on", print_found);
    a_.print_misses_by_reason("fold A");
    b_.print_line("fold B, held out", print_found);
    std::printf("  fold B - fold A: category %+.1f, hard/soft %+.1f, code %+.1f points\n",
                b_.category_pct() - a_.category_pct(), b_.bounce_pct() - a_.bounce_pct(),
                b_.code_pct() - a_.code_pct());
}

bool Score::enough_rows(const Corpus& c) const {
    if (rows_ < kMinRows || rows_ != static_cast<int>(c.rows.size())) {
        std::printf("too few rows scored: %d of the %zu read (at least %d needed)\n", rows_, c.rows.size(), kMinRows);
        return false;
    }
    if (!cat_rows_ || !bounce_rows_ || !code_rows_) {
        std::printf("a figure had no row to apply to (category %d, hard/soft %d, code %d rows)\n", cat_rows_,
                    bounce_rows_, code_rows_);
        return false;
    }
    return true;
}

void Score::print(const std::string& dir, bool print_found) const {
    std::printf("corpus %s: %d rows, %d with no %s found\n", dir.c_str(), rows_, rows_ - found_,
                print_found ? "recipient" : "reply");
    if (print_found) std::printf("  recipients found    %5.1f%% (%d/%d)\n", found_pct(), found_, rows_);
    std::printf("  category agreement  %5.1f%% (%d/%d)\n", category_pct(), cat_ok_, cat_rows_);
    std::printf("  hard/soft agreement %5.1f%% (%d/%d)\n", bounce_pct(), bounce_ok_, bounce_rows_);
    std::printf("  enhanced code       %5.1f%% (%d/%d)\n", code_pct(), code_ok_, code_rows_);
}

void Score::print_misses_by_reason(const std::string& label) const {
    std::printf("  %s category misses by reason:", label.c_str());
    for (auto& [r, n] : misses_by_reason_) std::printf(" %s=%d", r.c_str(), n);
    std::printf("\n");
}

}  // namespace preflight::corpus
