// Scores `preflight-classify dsn`'s parser and classifier on the labelled public bounce corpus
// (../shared/corpus/bounces): each message goes through the same split_mbox, parse_bounce_message
// and classify_bounce as the command, and the N-th verdict of a file is compared with its N-th
// expected row. CORPUS_VERBOSE=1 lists every miss of fold A (fold B is held out: corpus_scoring.hpp).
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
#include <memory>
#include <sstream>

#include "bounce_classifier.hpp"
#include "corpus_scoring.hpp"
#include "dsn_command.hpp"
#include "text_engine.hpp"

using namespace preflight;

namespace {

// An mbox holds several bounces: as the command does, each message is read on its own and the
// verdicts follow one another, in the order of the messages.
struct FileResult {
    std::vector<std::unique_ptr<BounceReport>> reports;
    std::vector<BounceVerdict> verdicts;
    std::vector<const BounceReport*> verdict_report;  // the report of each verdict
    std::string error;                                // of the first message that could not be read
};

}  // namespace

int main(int argc, char** argv) {
    std::string dir = argc > 1 ? argv[1] : "../shared/corpus/bounces";
    double floor_found = argc > 2 ? std::stod(argv[2]) : 95, floor_category = argc > 3 ? std::stod(argv[3]) : 90,
           floor_bounce = argc > 4 ? std::stod(argv[4]) : 92, floor_code = argc > 5 ? std::stod(argv[5]) : 95;
    corpus::Corpus corpus;
    if (auto status = corpus::load_or_exit_status(dir, corpus)) return *status;
    ReplyClassifier cl(RuleSetBuilder().add_shipped().build());
    // The other rule engines built in (the RE2 fallback beside Hyperscan): every verdict must
    // come out the same with each, field for field.
    std::vector<std::pair<std::string_view, std::unique_ptr<ReplyClassifier>>> others;
    for (std::string_view e : text_engines_built_in())
        if (e != text_engines_built_in().front())
            others.emplace_back(e, std::make_unique<ReplyClassifier>(RuleSetBuilder().add_shipped().build(e)));
    std::size_t compared = 0, differing = 0;
    auto same = [](const BounceVerdict& a, const BounceVerdict& b) {
        return a.status == b.status && a.bounce == b.bounce && a.category == b.category && a.code == b.code &&
               a.enhanced.cls == b.enhanced.cls && a.enhanced.subject == b.enhanced.subject &&
               a.enhanced.detail == b.enhanced.detail && a.enhanced_derived == b.enhanced_derived &&
               (a.rule ? a.rule->location : "") == (b.rule ? b.rule->location : "");
    };
    std::string scratch;
    std::map<std::string, FileResult> cache;
    corpus::FoldedScore folds(std::getenv("CORPUS_VERBOSE") != nullptr);
    for (const corpus::ExpectedRow& row : corpus.rows) {
        auto it = cache.find(row.file);
        if (it == cache.end()) {
            std::ifstream in(dir + "/eml/" + row.file, std::ios::binary);
            std::string data((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
            FileResult fr;
            for (std::string_view msg : split_mbox(data)) {
                auto& rep = fr.reports.emplace_back(std::make_unique<BounceReport>(parse_bounce_message(msg)));
                if (!rep->error.empty() && fr.error.empty()) fr.error = rep->error;
                std::vector<BounceVerdict> vs = classify_bounce(*rep, cl, scratch);
                for (auto& [engine, other] : others) {
                    std::vector<BounceVerdict> ws = classify_bounce(*rep, *other, scratch);
                    for (std::size_t k = 0; k < vs.size(); ++k, ++compared) {
                        if (k < ws.size() && same(vs[k], ws[k])) continue;
                        ++differing;
                        std::printf("ENGINE %s #%zu: %.*s gives another record than %.*s\n", row.file.c_str(), k + 1,
                                    static_cast<int>(engine.size()), engine.data(),
                                    static_cast<int>(text_engines_built_in().front().size()),
                                    text_engines_built_in().front().data());
                    }
                }
                for (BounceVerdict& v : vs) {
                    fr.verdicts.push_back(std::move(v));
                    fr.verdict_report.push_back(rep.get());
                }
            }
            it = cache.emplace(row.file, std::move(fr)).first;
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
            a.detail = std::string("[") + std::string(to_string(fr.verdict_report[idx - 1]->kind)) + " " +
                       v.recipient->recipient + "] (" + (v.rule ? v.rule->location : std::string("-")) + ") " +
                       v.diagnostic.substr(0, 160);
        } else if (!fr.error.empty()) {
            a.detail = fr.error;
        }
        folds.add(corpus, row, a);
    }
    folds.print(dir, true);
    if (!others.empty())
        std::printf("  rule engines: %zu verdicts compared, %zu differ (%s)\n", compared, differing,
                    text_engine_description().c_str());
    const corpus::Score& score = folds.all();
    bool ok = differing == 0 && score.enough_rows(corpus) && score.found_pct() >= floor_found &&
              score.category_pct() >= floor_category && score.bounce_pct() >= floor_bounce &&
              score.code_pct() >= floor_code;
    if (!ok)
        std::printf("below the floors (recipients %.0f%%, category %.0f%%, hard/soft %.0f%%, code %.0f%%)\n",
                    floor_found, floor_category, floor_bounce, floor_code);
    return ok ? 0 : 1;
}
