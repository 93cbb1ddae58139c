// Every error line of the seeds (../shared/seeds, transcribed into tests/data/seed-replies.tsv
// with the status, bounce type and category a relay operator should get) against the shipped
// rules. One row, one check; a failing row prints the reply, what was expected and the rule hit.
#include <catch2/catch.hpp>

#include <fstream>
#include <set>
#include <sstream>

#include "reply_classifier.hpp"

using namespace preflight;

namespace {

struct Row {
    int line;
    std::string source, reply, status, bounce, category, origin;
};

std::string unescape(const std::string& s) {
    std::string out;
    for (std::size_t i = 0; i < s.size(); ++i) {
        if (s[i] == '\\' && i + 1 < s.size()) {
            char n = s[++i];
            out.push_back(n == 'n' ? '\n' : n == 't' ? '\t' : n == 'r' ? '\r' : n);
        } else {
            out.push_back(s[i]);
        }
    }
    return out;
}

std::vector<Row> load_rows() {
    std::ifstream in(PREFLIGHT_TEST_DATA "/seed-replies.tsv");
    REQUIRE(in.good());
    std::vector<Row> rows;
    std::string line;
    int n = 0;
    while (std::getline(in, line)) {
        ++n;
        if (line.empty() || line[0] == '#') continue;
        std::vector<std::string> f;
        std::stringstream ss(line);
        std::string field;
        while (std::getline(ss, field, '\t')) f.push_back(field);
        INFO("seed-replies.tsv:" << n << ": " << line);
        REQUIRE(f.size() >= 5);
        rows.push_back({n, f[0], unescape(f[1]), f[2], f[3], f[4], f.size() > 5 && !f[5].empty() ? f[5] : "remote"});
    }
    return rows;
}

}  // namespace

TEST_CASE("every seed error line classifies as the seeds say", "[seeds]") {
    auto rows = load_rows();
    REQUIRE(rows.size() >= 100);
    ReplyClassifier cl(RuleSetBuilder().add_shipped().build());
    std::string scratch;
    int failed = 0;
    std::set<std::string> sources;
    for (const Row& r : rows) {
        sources.insert(r.source);
        REQUIRE((r.origin == "remote" || r.origin == "edge"));
        auto c = cl.classify(r.reply, r.origin == "edge" ? Origin::edge : Origin::remote, scratch);
        std::string got_status = c.error == Classification::Error::none ? std::string(to_string(c.status)) : "error";
        bool ok = got_status == r.status && to_string(c.bounce) == r.bounce && to_string(c.category) == r.category;
        if (!ok) ++failed;
        INFO("seed-replies.tsv:" << r.line << " [" << r.source << "] " << r.reply << "\n  expected " << r.status << "/"
                                 << r.bounce << "/" << r.category << ", got " << got_status << "/"
                                 << to_string(c.bounce) << "/" << to_string(c.category) << " by "
                                 << (c.rule ? c.rule->location : std::string("no rule")));
        CHECK(ok);
    }
    // All four seed documents with error lines are represented.
    for (const char* s : {"seed000", "seed001", "seed003", "seed004"}) {
        INFO("rows from " << s);
        CHECK(sources.count(s) == 1);
    }
    WARN(rows.size() - static_cast<std::size_t>(failed) << " of " << rows.size() << " seed rows pass");
}
