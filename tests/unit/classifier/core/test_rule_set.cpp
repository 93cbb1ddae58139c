#include <catch2/catch.hpp>

#include <atomic>
#include <fstream>
#include <thread>

#include "reply_classifier.hpp"
#include "rule_set.hpp"
#include "text_engine.hpp"

using namespace preflight;

namespace {

std::shared_ptr<const RuleSet> build(std::string_view text) {
    return RuleSetBuilder().add_text("t.rules", text).build();
}

std::string build_error(std::string_view text) {
    try {
        build(text);
    } catch (const RuleError& e) {
        return e.what();
    }
    return "no error";
}

Classification classify(const std::shared_ptr<const RuleSet>& rs, std::string_view reply,
                        Origin origin = Origin::remote) {
    std::string scratch;
    return ReplyClassifier(rs).classify(reply, origin, scratch);
}

const char kSmall[] =
    "action bad-mailbox The address does not exist: suppress it.\n"
    "action quota-issues Mailbox full: retry.\n"
    "action custom Custom advice.\n"
    "# comment\n"
    "\n"
    "quota-issues retry=yes text mailbox (is )?full|over quota\n"
    "bad-mailbox text user unknown\n"
    "spam-related only=5 text blocked\n"
    "policy-related only=4 text blocked\n"
    "message-expired status=expired text bounce after \\d+ days\n"
    "bad-domain assume=4 text host not found, try again\n"
    "bad-domain text host not found\n"
    "bad-mailbox enhanced 5.1.1\n"
    "other enhanced *.1.1\n"
    "quota-issues retry=yes action=custom enhanced *.2.2\n"
    "bad-mailbox code 550\n"
    "other code 5xx\n"
    "other code 4xx\n"
    "success code 2xx\n";

}  // namespace

TEST_CASE("precedence: text rule, then enhanced, then basic code", "[rules]") {
    auto rs = build(kSmall);
    // Text beats codes: a 4xx that says user unknown is bad-mailbox, and hard.
    auto c = classify(rs, "450 4.1.1 user unknown");
    CHECK(c.category == Category::bad_mailbox);
    CHECK(c.status == Status::deferred);
    CHECK(c.bounce == Bounce::hard);
    CHECK_FALSE(c.retry);
    CHECK(c.rule->location == "t.rules:7");

    c = classify(rs, "552 5.2.2 over quota");
    CHECK(c.category == Category::quota_issues);
    CHECK(c.status == Status::bounce);
    CHECK(c.bounce == Bounce::soft);
    CHECK(c.retry);
    CHECK(c.action == "Mailbox full: retry.");

    // No text rule: exact enhanced class first, then any class.
    c = classify(rs, "550 5.1.1 gone");
    CHECK(c.category == Category::bad_mailbox);
    c = classify(rs, "450 4.1.1 gone");
    CHECK(c.category == Category::other);
    CHECK(c.rule->location == "t.rules:14");
    c = classify(rs, "452 4.2.2 nope");
    CHECK(c.action == "Custom advice.");

    // Then the basic code, exact before class.
    c = classify(rs, "550 no idea");
    CHECK(c.category == Category::bad_mailbox);
    c = classify(rs, "554 no idea");
    CHECK(c.category == Category::other);
    CHECK(c.status == Status::bounce);
    c = classify(rs, "250 2.0.0 Ok: queued");
    CHECK(c.status == Status::sent);
    CHECK(c.bounce == Bounce::none);
    CHECK(c.category == Category::success);
}

TEST_CASE("an enhanced code whose detail no rule knows falls back to its subject's X.S.0", "[rules]") {
    auto rs = RuleSetBuilder()
                  .add_text("t.rules",
                            "policy-related enhanced *.7.0\nother enhanced *.2.0\n"
                            "quota-issues enhanced *.2.2\nbad-mailbox code 550\n")
                  .build();
    // RFC 3463 3.1: the subject means something without the detail; it outranks the basic code.
    CHECK(classify(rs, "550 5.7.60 Client does not have permissions to send as this sender").category ==
          Category::policy_related);
    CHECK(classify(rs, "550 5.2.5 something").category == Category::other);
    CHECK(classify(rs, "552 5.2.2 something").category == Category::quota_issues);
    // No rule for the subject either: the basic code decides.
    CHECK(classify(rs, "550 5.1.99 something").category == Category::bad_mailbox);
}

TEST_CASE("vague=yes words yield to an enhanced code known at its own detail", "[rules]") {
    auto rs = RuleSetBuilder()
                  .add_text("t.rules",
                            "bad-mailbox bounce=soft vague=yes text address rejected\n"
                            "policy-related text access denied\n"
                            "bad-mailbox enhanced *.1.1\nother enhanced *.0.0\n"
                            "policy-related enhanced *.7.0\n")
                  .build();
    Classification proven = classify(rs, "550 5.1.1 Address rejected");
    CHECK(proven.category == Category::bad_mailbox);
    CHECK(proven.bounce == Bounce::hard);
    CHECK(proven.rule->pattern == "*.1.1");
    // Known only through its subject's X.S.0, or a .0 detail: the words are as good as the code.
    CHECK(classify(rs, "550 5.7.99 Address rejected").bounce == Bounce::soft);
    CHECK(classify(rs, "550 5.0.0 Address rejected").rule->pattern == "address rejected");
    CHECK(classify(rs, "550 Address rejected").bounce == Bounce::soft);
    // Words that are not vague keep their precedence over the code.
    CHECK(classify(rs, "550 5.1.1 Access denied").category == Category::policy_related);
    // Any other text rule that matches wins over a vague one, wherever the vague one stands
    // (a delay notice that quotes its reason is about the reason).
    auto notice = RuleSetBuilder()
                      .add_text("site.rules", "message-expired status=deferred assume=4 vague=yes text warning only\n")
                      .add_text("t.rules", "bad-domain assume=4 text no mx found\nother text nothing\n")
                      .build();
    CHECK(classify(notice, "No MX found for domain. This is a warning only").category == Category::bad_domain);
    Classification alone = classify(notice, "This is a warning only");
    CHECK(alone.category == Category::message_expired);
    CHECK(alone.status == Status::deferred);
}

TEST_CASE("only= and assume= follow the reply class", "[rules]") {
    auto rs = build(kSmall);
    CHECK(classify(rs, "554 blocked").category == Category::spam_related);
    CHECK(classify(rs, "421 blocked").category == Category::policy_related);
    auto c =
        classify(rs, "Host or domain name not found. Name service error for name=x type=MX: Host not found, try again");
    CHECK(c.category == Category::bad_domain);
    CHECK(c.status == Status::deferred);
    c = classify(rs, "Host not found (MX)");
    CHECK(c.status == Status::bounce);  // hard category, no code: taken as 5xx
    CHECK(c.bounce == Bounce::hard);
}

TEST_CASE("1xx and 3xx replies are decided by code rules only", "[rules]") {
    auto rs = build(std::string(kSmall) + "other status=deferred code 3xx\n");
    auto c = classify(rs, "354 5.2.2 mailbox full");
    CHECK(c.category == Category::other);
    CHECK(c.status == Status::deferred);
    CHECK(c.rule->location == "t.rules:20");
}

TEST_CASE("status=expired and edge origin override the code", "[rules]") {
    auto rs = build(kSmall);
    auto c = classify(rs, "Bounce after 5 days");
    CHECK(c.status == Status::expired);
    CHECK_FALSE(c.retry);
    c = classify(rs, "550 5.1.1 user unknown", Origin::edge);
    CHECK(c.status == Status::rejected);
    c = classify(rs, "250 ok", Origin::edge);
    CHECK(c.status == Status::sent);
}

TEST_CASE("unclassifiable and empty replies are errors, not guesses", "[rules]") {
    auto rs = build(kSmall);
    CHECK(classify(rs, "").error == Classification::Error::empty);
    CHECK(classify(rs, "   \t ").error == Classification::Error::empty);
    CHECK(classify(rs, "lorem ipsum").error == Classification::Error::unclassifiable);
    CHECK(classify(rs, std::string("\x01\xff\xfe\0junk", 8)).error == Classification::Error::unclassifiable);
    // With a code, no rule still gives 'other' and the status of the code.
    auto none = RuleSetBuilder().build();
    auto c = classify(none, "451 whatever");
    CHECK(c.error == Classification::Error::none);
    CHECK(c.category == Category::other);
    CHECK(c.status == Status::deferred);
    CHECK(c.retry);
    CHECK(c.rule == nullptr);
}

TEST_CASE("earlier files win: site rules before shipped rules", "[rules]") {
    auto rs = RuleSetBuilder()
                  .add_text("site.rules", "spam-related text user unknown\nbad-domain code 550\n")
                  .add_text("t.rules", kSmall)
                  .build();
    CHECK(classify(rs, "550 user unknown").category == Category::spam_related);
    CHECK(classify(rs, "550 something").category == Category::bad_domain);
    CHECK(classify(rs, "550 something").rule->location == "site.rules:2");
    CHECK(classify(rs, "552 over quota").category == Category::quota_issues);
}

TEST_CASE("broken rule files name file, line and reason", "[rules]") {
    CHECK(build_error("bad-mailbox text (unclosed\n").rfind("t.rules:1: bad regex: missing ): (unclosed", 0) == 0);
    CHECK(build_error("\n\nnot-a-category text x\n") == "t.rules:3: unknown category or statement 'not-a-category'");
    CHECK(build_error("bad-mailbox bounce=maybe text x\n") == "t.rules:1: bounce=maybe: want hard, soft or none");
    CHECK(build_error("bad-mailbox text\n") == "t.rules:1: matcher has no pattern");
    CHECK(build_error("bad-mailbox frob=1 text x\n") ==
          "t.rules:1: unknown key 'frob' (want bounce, retry, status, assume, only, vague, action)");
    CHECK(build_error("bad-mailbox code 650\n") == "t.rules:1: bad basic code '650' (want NNN or Nxx, N in 1-5)");
    CHECK(build_error("bad-mailbox enhanced 5.1\n") ==
          "t.rules:1: bad enhanced code '5.1' (want C.S.D with C in 2,4,5,*)");
    CHECK(build_error("bad-mailbox code 550\nother code 550\n") ==
          "t.rules:2: duplicate rule for 550 (first at t.rules:1)");
    CHECK(build_error("bad-mailbox action=nope text x\n") == "t.rules:1: undefined action 'nope'");
    CHECK(build_error("bad-mailbox only=4 code 550\n") ==
          "t.rules:1: only=, assume= and vague= apply to text rules only");
    CHECK(build_error("bad-mailbox vague=yes enhanced 5.1.1\n") ==
          "t.rules:1: only=, assume= and vague= apply to text rules only");
    CHECK(build_error("bad-mailbox vague=1 text x\n") == "t.rules:1: vague=1: want yes or no");
    CHECK(build_error("action Bad text\n") == "t.rules:1: bad action name 'Bad' (want [a-z0-9-]+)");
    CHECK(build_error("bad-mailbox retry=maybe text x\n") == "t.rules:1: retry=maybe: want yes or no");
}

TEST_CASE("a rule file that cannot be read is an error naming it", "[rules]") {
    RuleSetBuilder b;
    CHECK_THROWS_WITH(b.add_file("/nonexistent/site.rules"), "/nonexistent/site.rules: cannot open rule file");
}

TEST_CASE("shipped rules compile and cover every category and seed 004 code", "[rules][shipped]") {
    auto rs = RuleSetBuilder().add_shipped().build();
    CHECK(rs->text_rule_count() > 100);
    for (int i = 0; i < kCategoryCount; ++i) {
        INFO("category " << to_string(static_cast<Category>(i)));
        CHECK_FALSE(rs->category_action(static_cast<Category>(i)).empty());
    }
    const char* seed004[] = {"4.0.0", "4.4.1", "4.4.2", "4.4.4", "4.4.6", "5.0.0", "5.1.0",
                             "5.1.1", "5.1.2", "5.1.3", "5.2.1", "5.2.2", "5.3.4", "5.4.4"};
    for (const char* code : seed004) {
        EnhancedCode e;
        REQUIRE(parse_enhanced_code(code, e));
        INFO("enhanced code " << code);
        CHECK(rs->match_enhanced(e) != nullptr);
    }
    // Every rule has an action to show.
    for (const Rule& r : rs->rules()) {
        INFO(r.location);
        CHECK_FALSE(r.action.empty());
    }
}

TEST_CASE("a compiled rule set is shared by threads", "[rules][threads]") {
    auto rs = RuleSetBuilder().add_shipped().build();
    ReplyClassifier cl(rs);
    std::vector<std::thread> threads;
    std::atomic<int> wrong{0};
    for (int t = 0; t < 4; ++t)
        threads.emplace_back([&] {
            std::string scratch;
            for (int i = 0; i < 20000; ++i) {
                auto c =
                    cl.classify(i % 2 ? "552 5.2.2 over quota" : "550 5.1.1 user unknown", Origin::remote, scratch);
                if (c.category != (i % 2 ? Category::quota_issues : Category::bad_mailbox)) ++wrong;
            }
        });
    for (auto& t : threads) t.join();
    CHECK(wrong == 0);
}

TEST_CASE("a pattern the rule engine cannot compile is named by file and line", "[rules]") {
    // A back-reference: RE2 has none, so neither engine takes it; Hyperscan would also refuse
    // look-around, which RE2 rejects first for a site file (site patterns must suit both).
    CHECK(build_error("other text x\nbad-mailbox text (a)\\1\n").rfind("t.rules:2: bad regex: ", 0) == 0);
    CHECK(build_error("other text x\nbad-mailbox text (?=a)b\n").rfind("t.rules:2: bad regex: ", 0) == 0);
    // An empty match is legal for RE2 but has no meaning as a rule; Hyperscan refuses it.
    if (text_engines_built_in().front() == "hyperscan")
        CHECK(build_error("other text x\nbad-mailbox text a?\n")
                  .rfind("t.rules:2: pattern the rule engine (Hyperscan) cannot compile: ", 0) == 0);
}

TEST_CASE("every rule engine built in gives the same rule for the same text", "[rules]") {
    // Non-ASCII letters fold in both engines alike; a site file and the shipped files.
    auto make = [](std::string_view engine) {
        return RuleSetBuilder()
            .add_text("site.rules",
                      "inactive-mailbox text ящик заблокирован|boîte archivée\nspam-related text [а-я]+ спам\n")
            .add_shipped()
            .build(engine);
    };
    const char* texts[] = {"550 ЯЩИК ЗАБЛОКИРОВАН",
                           "550 BOÎTE ARCHIVÉE",
                           "550 Это СПАМ",
                           "550 5.1.1 user unknown",
                           "452 4.2.2 mailbox full",
                           "421 try again later",
                           "250 2.7.0 Ok, discarded, id=1 - spam",
                           "hello",
                           "",
                           "550 \xff\xfe not utf-8",
                           "550 Bo\xeete pleine",
                           "550 bo\xc3\xaete pleine",
                           "550 compte d\xe9sactiv\xe9",
                           "550 \xed\xa0\x80 surrogate \xc0\xaf overlong user unknown",
                           "550 \xe3\x81 cut \xf0\x9f\x98 mailbox full"};
    for (std::string_view engine : text_engines_built_in()) {
        auto rs = make(engine);
        auto ref = make(text_engines_built_in().back());
        REQUIRE(rs);
        for (const char* t : texts) {
            INFO(engine << ": " << t);
            const Rule* a = rs->match_text(t, 5);
            const Rule* b = ref->match_text(t, 5);
            CHECK((a ? a->location : "-") == (b ? b->location : "-"));
        }
        CHECK(rs->match_text("550 ЯЩИК ЗАБЛОКИРОВАН", 5)->location == "site.rules:1");
        CHECK(rs->match_text("550 Это СПАМ", 5)->location == "site.rules:2");
    }
    CHECK(RuleSetBuilder().add_shipped().build("no-such-engine") == nullptr);
}
