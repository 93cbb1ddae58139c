// The sourced reason table (tests/data/reasons.tsv): real replies and bounce diagnostics quoted
// from RFCs, MTA sources and documentation and providers' error pages, none from the labelled
// corpus, each against what its reason must get. One row, one check; a failing row prints its
// line, source, reply, what was expected and the rule that decided.
#include <catch2/catch.hpp>

#include <fstream>
#include <map>
#include <set>
#include <sstream>

#include "reply_classifier.hpp"
#include "text_engine.hpp"

using namespace preflight;

namespace {

std::vector<std::string> tabs(const std::string& line) {
    std::vector<std::string> f;
    std::stringstream ss(line);
    std::string field;
    while (std::getline(ss, field, '\t')) f.push_back(field);
    return f;
}

// What a reason (or a row's exception) must get.
struct Expect {
    std::string bounce;                // hard, soft, not-hard, either, none
    std::string status = "*";          // sent, deferred, expired, bounce or *
    std::set<std::string> categories;  // empty: any
};

struct Row {
    int line;
    std::string reason, reply, source;
    Expect expect;
    std::string why;
};

std::set<std::string> split_commas(const std::string& s) {
    std::set<std::string> out;
    if (s == "*") return out;
    std::stringstream ss(s);
    std::string c;
    while (std::getline(ss, c, ',')) {
        REQUIRE(parse_category(c));
        out.insert(c);
    }
    return out;
}

bool bounce_ok(const std::string& want, Bounce got) {
    if (want == "hard") return got == Bounce::hard;
    if (want == "soft") return got == Bounce::soft;
    if (want == "not-hard") return got != Bounce::hard;
    if (want == "either") return got == Bounce::hard || got == Bounce::soft;
    return got == Bounce::none;
}

std::vector<Row> load_rows() {
    std::ifstream in(PREFLIGHT_TEST_DATA "/reasons.tsv");
    REQUIRE(in.good());
    std::map<std::string, Expect> reasons;
    std::vector<Row> rows;
    std::string line;
    int n = 0;
    while (std::getline(in, line)) {
        ++n;
        INFO("reasons.tsv:" << n << ": " << line);
        if (line.rfind("#expect\t", 0) == 0) {
            auto f = tabs(line);
            REQUIRE(f.size() == 5);
            REQUIRE((f[2] == "hard" || f[2] == "soft" || f[2] == "not-hard" || f[2] == "either" || f[2] == "none"));
            REQUIRE((f[3] == "*" || parse_status(f[3])));
            reasons[f[1]] = Expect{f[2], f[3], split_commas(f[4])};
            continue;
        }
        if (line.empty() || line[0] == '#') continue;
        auto f = tabs(line);
        REQUIRE((f.size() == 3 || f.size() == 5));
        auto it = reasons.find(f[0]);
        REQUIRE(it != reasons.end());  // every reason has its #expect line above its rows
        Row r{n, f[0], f[1], f[2], it->second, {}};
        REQUIRE(!r.reply.empty());
        REQUIRE(!r.source.empty());
        if (f.size() == 5) {  // CATEGORY/BOUNCE, with why
            std::size_t slash = f[3].find('/');
            REQUIRE(slash != std::string::npos);
            REQUIRE(!f[4].empty());
            // An exception states category and bounce type only: any status.
            r.expect = Expect{f[3].substr(slash + 1), std::string(1, '*'), split_commas(f[3].substr(0, slash))};
            r.why = f[4];
        }
        rows.push_back(std::move(r));
    }
    return rows;
}

}  // namespace

TEST_CASE("sourced replies of every reason classify as their reason says", "[reasons]") {
    auto rows = load_rows();
    REQUIRE(rows.size() >= 1000);
    ReplyClassifier cl(RuleSetBuilder().add_shipped().build());
    std::string scratch;
    std::map<std::string, int> per_reason;
    std::set<std::string> replies;
    int failed = 0;
    for (const Row& r : rows) {
        ++per_reason[r.reason];
        INFO("reasons.tsv:" << r.line << " [" << r.reason << "; " << r.source << "] " << r.reply);
        CHECK(replies.insert(r.reply).second);  // each wording once
        auto c = cl.classify(r.reply, Origin::remote, scratch);
        const bool classified = c.error == Classification::Error::none;
        const std::string category(to_string(c.category));
        const bool ok = classified && bounce_ok(r.expect.bounce, c.bounce) &&
                        (r.expect.categories.empty() || r.expect.categories.count(category)) &&
                        (r.expect.status == "*" || r.expect.status == to_string(c.status));
        if (!ok) ++failed;
        INFO("  got " << (classified ? std::string(to_string(c.status)) : "error") << "/" << to_string(c.bounce) << "/"
                      << category << " by " << (c.rule ? c.rule->location : std::string("no rule")) << "; want "
                      << r.expect.status << "/" << r.expect.bounce << "/"
                      << (r.expect.categories.empty() ? std::string("*") : *r.expect.categories.begin() + "..."));
        CHECK(ok);
    }
    // Every reason class of the corpus has sourced rows; those with fewer than ten are the ones
    // whose wordings few MTAs or providers publish (reasons.tsv's header says which).
    for (const char* reason :
         {"userunknown",   "hasmoved",        "hostunknown",  "notaccept",    "suspend",       "mailboxfull",
          "systemfull",    "exceedlimit",     "mesgtoobig",   "expired",      "filtered",      "rejected",
          "blocked",       "badreputation",   "speeding",     "toomanyconn",  "authfailure",   "requireptr",
          "securityerror", "policyviolation", "spamdetected", "contenterror", "virusdetected", "notcompliantrfc",
          "syntaxerror",   "failedstarttls",  "networkerror", "norelaying",   "systemerror",   "mailererror",
          "onhold",        "undefined",       "delivered"}) {
        INFO("rows of " << reason);
        CHECK(per_reason[reason] >= 3);
    }
    WARN(rows.size() - static_cast<std::size_t>(failed) << " of " << rows.size() << " sourced rows pass");
}

TEST_CASE("every rule engine built in classifies the sourced replies alike", "[reasons]") {
    auto rows = load_rows();
    std::vector<std::pair<std::string_view, ReplyClassifier>> classifiers;
    for (std::string_view e : text_engines_built_in())
        classifiers.emplace_back(e, ReplyClassifier(RuleSetBuilder().add_shipped().build(e)));
    std::string scratch;
    for (const Row& r : rows) {
        auto ref = classifiers.front().second.classify(r.reply, Origin::remote, scratch);
        for (std::size_t k = 1; k < classifiers.size(); ++k) {
            INFO("reasons.tsv:" << r.line << " " << r.reply << " with " << classifiers[k].first);
            auto c = classifiers[k].second.classify(r.reply, Origin::remote, scratch);
            CHECK(c.status == ref.status);
            CHECK(c.bounce == ref.bounce);
            CHECK(c.category == ref.category);
            CHECK((c.rule ? c.rule->location : "-") == (ref.rule ? ref.rule->location : "-"));
        }
    }
    WARN(rows.size() << " rows compared over " << classifiers.size() << " engine(s)");
}
