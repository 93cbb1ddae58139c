// The Hyperscan engine's ASCII path (a literal scan, exact literals, single-pattern checks) must
// find exactly the patterns its whole database finds: every hit, not only the deciding rule.
#include <catch2/catch.hpp>

#include <algorithm>
#include <fstream>
#include <sstream>

#include "rule_set.hpp"
#include "text_engine.hpp"
#ifdef PREFLIGHT_HAVE_HYPERSCAN
#include "ascii_prefilter.hpp"
#include "text_engine_impl.hpp"
#endif

using namespace preflight;

namespace {

std::string upper(std::string s) {
    for (char& c : s)
        if (c >= 'a' && c <= 'z') c = static_cast<char>(c - 'a' + 'A');
    return s;
}

// Replies of the seed, sample and reason tables, as given and reworded in ways that move word
// boundaries and case: the texts the path must agree on.
std::vector<std::string> texts() {
    std::vector<std::string> base;
    std::string line;
    std::ifstream seeds(PREFLIGHT_TEST_DATA "/seed-replies.tsv");
    while (std::getline(seeds, line)) {
        if (line.empty() || line[0] == '#') continue;
        std::stringstream ss(line);
        std::string id, reply;
        if (std::getline(ss, id, '\t') && std::getline(ss, reply, '\t')) base.push_back(reply);
    }
    std::ifstream samples(PREFLIGHT_TEST_DATA "/sample-replies.txt");
    while (std::getline(samples, line))
        if (!line.empty()) base.push_back(line);
    std::ifstream reasons(PREFLIGHT_TEST_DATA "/reasons.tsv");
    while (std::getline(reasons, line)) {
        if (line.empty() || line[0] == '#') continue;
        std::stringstream ss(line);
        std::string reason, reply;
        if (std::getline(ss, reason, '\t') && std::getline(ss, reply, '\t')) base.push_back(reply);
    }
    std::vector<std::string> out;
    for (const std::string& t : base) {
        out.push_back(t);
        out.push_back(upper(t));
        out.push_back("x" + t + "x");  // glued to a word: \b at the ends now fails
        out.push_back("_" + t + "_");
        std::string spaced = t;  // every blank doubled into a dash: words glued differently
        std::replace(spaced.begin(), spaced.end(), ' ', '-');
        out.push_back(spaced);
    }
    return out;
}

std::vector<TextPattern> patterns_of(std::string_view site) {
    RuleSetBuilder b;
    if (!site.empty()) b.add_text("site.rules", site);
    b.add_shipped();
    return b.text_patterns();
}

}  // namespace

TEST_CASE("the Hyperscan engine's ASCII path finds every pattern its whole database finds", "[rules]") {
    const std::vector<TextPattern> patterns = patterns_of("");
    auto whole = compile_text_engine(patterns, "hyperscan-whole");
    if (!whole) return;  // built without Hyperscan: no such path
    // One engine after the other: a thread's Hyperscan scratch is re-fitted at each switch.
    const std::vector<std::string> all = texts();
    std::vector<std::vector<std::uint32_t>> expected;
    for (const std::string& t : all) expected.push_back(whole->all_hits(t));
    // As shipped, and with every nominated pattern checked by RE2 from its first use.
    for (const char* name : {"hyperscan", "hyperscan-eager"}) {
        INFO(name);
        auto fast = compile_text_engine(patterns, name);
        REQUIRE(fast);
        std::size_t with_hits = 0;
        for (std::size_t i = 0; i < all.size(); ++i) {
            INFO(all[i]);
            CHECK(fast->all_hits(all[i]) == expected[i]);
            with_hits += !expected[i].empty();
        }
        CHECK(with_hits > all.size() / 2);  // the texts do reach the rules
    }
}

TEST_CASE("the ASCII path agrees with the whole database where RE2 and Hyperscan read text apart", "[rules]") {
    // fuzz_ascii_path's first find: a vertical tab is \S to RE2, \s to Hyperscan, so "user (\S+ )?not
    // listed" (replies.rules) matched by an RE2 check only. And a $ matches before a final
    // newline in Hyperscan, at the very end only in RE2 ("transaction failed\.?$").
    const std::vector<TextPattern> patterns = patterns_of("");
    auto whole = compile_text_engine(patterns, "hyperscan-whole");
    if (!whole) return;
    const std::string cases[] = {
        std::string("User use\x01\0a\x10\0i'\vr@example.com not listed in Domino Directory", 61),
        "user x\vy not listed",
        "user x\v not listed",
        "transaction failed\n",
        "554 transaction failed.\n",
        "message rejected\n",
        "message rejected\n\n",
        "transaction failed\r\n",
    };
    std::vector<std::vector<std::uint32_t>> expected;
    for (const std::string& t : cases) expected.push_back(whole->all_hits(t));
    for (const char* name : {"hyperscan", "hyperscan-eager"}) {
        auto fast = compile_text_engine(patterns, name);
        REQUIRE(fast);
        for (std::size_t i = 0; i < std::size(cases); ++i) {
            INFO(name << ": " << cases[i]);
            CHECK(fast->all_hits(cases[i]) == expected[i]);
        }
    }
    CHECK_FALSE(expected[0].empty());  // the texts do reach the rules
    CHECK_FALSE(expected[3].empty());
}

TEST_CASE("the ASCII path reads boundaries, classes, optional parts and letters outside ASCII", "[rules]") {
    const char* site =
        "other text \\bfoo\\b\n"
        "other text \\b(ab|cd)-?x[yz]\\b\n"
        "other text qu[^a-z]te|\\bq(u|v)+ick\\b\n"
        "other text \\bmailbox (is )?full\\b|ящик переполнен\n"
        "other text (?i:snake)_case\\b\n"
        "other text \\bwe\\b \\b-dash\\b|\\bwe -\\bdash\\b\n"
        "other text \\bkelvin\\b|\xe2\x84\xaa"
        "elvin\n"  // KELVIN SIGN: folds onto an ASCII k
        "other text \\d{3} \\w+ \\S+ end\\b\n"
        "other text \\pL\\pL sign|\\x41bc\n"  // syntax the reader leaves: checked every time
        "other text ^start|end$\n"
        "other text a.b.c|[.][*]\n";
    const std::vector<TextPattern> patterns = patterns_of(site);
    auto fast = compile_text_engine(patterns, "hyperscan");
    auto eager = compile_text_engine(patterns, "hyperscan-eager");
    auto whole = compile_text_engine(patterns, "hyperscan-whole");
    if (!fast || !eager || !whole) return;
    const char* cases[] = {"foo", "a foo b", "xfoo", "foox", "_foo", "foo_", "FOO.", "ab-xy", "cdxz", "ab-xyz",
                           "zab-xy", "qu te", "quite", "qu5te", "quick", "quuuick", "qvick", "q-ick", "mailbox full",
                           "MAILBOX IS FULL", "mailbox isfull", "mailbox is fullx", "snake_case", "SNAKE_CASE",
                           "snake_cases", "we -dash", "we-dash", "we  -dash", "kelvin", "KELVIN", "xkelvin", "elvin",
                           "123 ab c-d end", "12 ab c end", "123 ab c end.", "Ab sign", "abc", "Abc", "start here",
                           "restart", "the end", "end.", "axbxc", "a.b.c", ".*", "x*", "",
                           // Where RE2 and Hyperscan read ASCII text apart: a vertical tab is \s
                           // to Hyperscan (PCRE) only, and its $ matches before a final newline.
                           "123 ab\vc-d end", "123 ab c\vend", "the end\n", "start\n", "foo\v"};
    std::vector<std::vector<std::uint32_t>> expected;
    for (const char* t : cases) expected.push_back(whole->all_hits(t));
    for (std::size_t i = 0; i < std::size(cases); ++i) {
        INFO(cases[i]);
        CHECK(fast->all_hits(cases[i]) == expected[i]);
        CHECK(eager->all_hits(cases[i]) == expected[i]);
    }
    CHECK(fast->all_hits("a foo b").front() == 0);  // site.rules:1, in the site group
}

#ifdef PREFLIGHT_HAVE_HYPERSCAN
TEST_CASE("the shipped rules' ASCII prefilter is built in and reads back as analysed", "[rules]") {
    // Start-up reads the prefilter made at build time; were it refused, every start would
    // analyse the rules again (tens of milliseconds) with nothing to show it.
    const std::vector<TextPattern> patterns = patterns_of("");
    const AsciiPrefilter analysed = analyse_for_ascii(patterns, 0, patterns.size());
    const std::string bytes = prefilter_to_bytes(analysed);
    CHECK(kShippedPrefilterTables.size == bytes.size());
    CHECK(kShippedPrefilterTables.fingerprint == prefilter_tables_fingerprint(patterns));
    CHECK(std::string_view(kShippedPrefilterTables.bytes, kShippedPrefilterTables.size) == bytes);
    AsciiPrefilter back;
    REQUIRE(prefilter_from_bytes(bytes, back));
    CHECK(prefilter_to_bytes(back) == bytes);
    CHECK(back.checks.size() == analysed.checks.size());
    CHECK_FALSE(prefilter_from_bytes(bytes.substr(0, bytes.size() - 1), back));  // cut short
}
#endif
