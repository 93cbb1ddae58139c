// Scores `preflight-classify dsn`'s parser and classifier on the labelled public bounce corpus
// (../shared/corpus/bounces): each message goes through the same parse_bounce_message and
// classify_bounce as the command, and the N-th verdict is compared with the N-th expected row.
// Prints the four figures (recipients found, category, hard/soft, enhanced code) and fails
// below the floors given on the command line (defaults: the 95/90/92/95). A row whose
// recipient was not found counts as wrong in the other figures too.
// Exit 77 (ctest: skipped) when the corpus is absent.
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <iostream>
#include <iterator>
#include <map>
#include <sstream>

#include "bounce_classifier.hpp"
#include "corpus_scoring.hpp"

using namespace preflight;

namespace {

struct FileResult {
    BounceReport report;
    std::vector<BounceVerdict> verdicts;
};

}  // namespace

int main(int argc, char** argv) {
    std::string dir = argc > 1 ? argv[1] : "../shared/corpus/bounces";
    double floor_found = argc > 2 ? std::stod(argv[2]) : 95, floor_category = argc > 3 ? std::stod(argv[3]) : 90,
           floor_bounce = argc > 4 ? std::stod(argv[4]) : 92, floor_code = argc > 5 ? std::stod(argv[5]) : 95;
    corpus::Corpus corpus;
    if (!corpus::load(dir, corpus)) {
        std::cout << "corpus not found at " << dir << " (expected.tsv, category-map.tsv): skipped\n";
        return 77;
    }
    ReplyClassifier cl(RuleSetBuilder().add_shipped().build());
    std::string scratch;
    std::map<std::string, FileResult> cache;
    corpus::Score score(true);
    score.verbose(std::getenv("CORPUS_VERBOSE") != nullptr);
    for (const corpus::ExpectedRow& row : corpus.rows) {
        auto it = cache.find(row.file);
        if (it == cache.end()) {
            std::ifstream in(dir + "/eml/" + row.file, std::ios::binary);
            std::string data((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
            it = cache.emplace(row.file, FileResult{parse_bounce_message(data), {}}).first;
            it->second.verdicts = classify_bounce(it->second.report, cl, scratch);
        }
        const FileResult& fr = it->second;
        corpus::Answer a;
        auto idx = static_cast<std::size_t>(row.index);
        if (idx <= fr.verdicts.size()) {
            const BounceVerdict& v = fr.verdicts[idx - 1];
            a.found = true;
            a.category = to_string(v.category);
            a.bounce = to_string(v.bounce);
            a.enhanced = v.enhanced;
            a.detail = std::string("[") + std::string(to_string(fr.report.kind)) + " " + v.recipient->recipient + "] (" +
                       (v.rule ? v.rule->location : std::string("-")) + ") " + v.diagnostic.substr(0, 160);
        } else if (!fr.report.error.empty()) {
            a.detail = fr.report.error;
        }
        score.add(corpus, row, a);
    }
    score.print(dir, true);
    bool ok = score.found_pct() >= floor_found && score.category_pct() >= floor_category &&
              score.bounce_pct() >= floor_bounce && score.code_pct() >= floor_code;
    if (!ok)
        std::printf("below the floors (recipients %.0f%%, category %.0f%%, hard/soft %.0f%%, code %.0f%%)\n", floor_found,
                    floor_category, floor_bounce, floor_code);
    return ok ? 0 : 1;
}
