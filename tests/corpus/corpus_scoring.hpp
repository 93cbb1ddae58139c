// Scoring against the labelled bounce corpus (../shared/corpus/bounces), shared by the
// corpus tests: reading expected.tsv and category-map.tsv, and the README's rules for each
// row (allowed categories, hard/soft with 'either', the X.0.9NN class-digit rule, feedback and
// vacation rows never hard).
#pragma once

#include <map>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "reply_parser.hpp"

namespace preflight::corpus {

struct ReasonMap {
    std::string status, bounce;
    std::set<std::string> categories;
};

struct ExpectedRow {
    std::string file;
    int index = 1;  // 1-based recipient index within the file
    std::string status, replycode, reason;
};

struct Corpus {
    std::map<std::string, ReasonMap> reasons;
    std::vector<ExpectedRow> rows;
};

// False when dir has no expected.tsv or category-map.tsv (the corpus is not there: skip).
// Throws std::runtime_error naming FILE:LINE for a row it cannot read (a row skipped in silence
// would raise the scores).
bool load(const std::string& dir, Corpus& out);

// load() for a corpus test's main: nothing when the corpus was read; else the exit status to
// end with, after saying why: 77 (ctest: skipped) when it is absent, 1 for a row it cannot read.
std::optional<int> load_or_exit_status(const std::string& dir, Corpus& out);

// The fewest rows a corpus test scores before its figures mean anything (the public half has 330).
constexpr int kMinRows = 300;

// What a classifier said about one row.
struct Answer {
    bool found = false;  // false: the recipient was not found at all
    std::string category, bounce;
    EnhancedCode enhanced;
    std::string detail;  // shown with CORPUS_VERBOSE
};

// A row the classifier found nothing for (no recipient, or a reply it refused) counts as wrong
// in every figure it applies to: refusing more rows can only lower a score. A figure with no
// row to apply to is 0 %, and below kMinRows rows scored, nothing passes.
class Score {
public:
    void add(const Corpus& c, const ExpectedRow& row, const Answer& a);
    // Prints the figures; found is printed only when print_found.
    void print(const std::string& dir, bool print_found) const;
    // "LABEL category misses by reason: reason=N ..."
    void print_misses_by_reason(const std::string& label) const;
    // The four figures on one line, after LABEL.
    void print_line(const std::string& label, bool print_found) const;
    double found_pct() const, category_pct() const, bounce_pct() const, code_pct() const;
    int rows() const { return rows_; }
    // Enough rows were scored, and every figure had rows: false with the reason printed.
    bool enough_rows(const Corpus& c) const;

private:
    bool verbose_ = false;
    int rows_ = 0, found_ = 0, cat_rows_ = 0, cat_ok_ = 0, bounce_rows_ = 0, bounce_ok_ = 0, code_rows_ = 0,
        code_ok_ = 0;
    std::map<std::string, int> misses_by_reason_;

public:
    Score& verbose(bool v) {
        verbose_ = v;
        return *this;
    }
};

// The public half in two fixed folds by a hash of the file name (FNV-1a 32-bit of the name:
// even 'A', odd 'B'). Rules are worked on from fold A's misses only; fold B, never listed,
// estimates the accuracy on bounces the rules were not written from.
char fold_of(const std::string& file);

// One Score over all rows, one per fold. Misses are listed (verbose) for fold A only.
class FoldedScore {
public:
    explicit FoldedScore(bool verbose) { a_.verbose(verbose); }
    void add(const Corpus& c, const ExpectedRow& row, const Answer& answer) {
        all_.add(c, row, answer);
        (fold_of(row.file) == 'A' ? a_ : b_).add(c, row, answer);
    }
    // The whole corpus as Score::print does, then one line per fold.
    void print(const std::string& dir, bool print_found) const;
    const Score& all() const { return all_; }

private:
    Score all_, a_, b_;
};

std::vector<std::string> split(const std::string& s, char sep);

}  // namespace preflight::corpus
