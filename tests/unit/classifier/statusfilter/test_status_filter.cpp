#include <catch2/catch.hpp>

#include <string>

#include "reply_classifier.hpp"
#include "rule_set.hpp"
#include "status_filter.hpp"

using namespace preflight;

namespace {

const ReplyClassifier& classifier() {
    static const ReplyClassifier c(RuleSetBuilder().add_shipped().build());
    return c;
}

// The socketmap answer for key: "NOTFOUND" or the rewritten "X.Y.Z text".
std::string filtered(std::string_view key, const StatusPolicy& policy = StatusPolicy()) {
    std::string scratch;
    FilterResult r = filter_status(key, classifier(), policy, scratch);
    if (!r.new_class) return "NOTFOUND";
    std::string out(key);
    out[0] = r.new_class;
    return out;
}

}  // namespace

TEST_CASE("status filter: the built-in policy on Postfix's keys", "[status_filter]") {
    struct Case {
        const char* key;
        const char* want;  // "NOTFOUND" or the new key
    };
    const Case cases[] = {
        // Full mailbox: defer even though the remote said 5xx.
        {"5.2.2 host mx.example[127.0.0.1] said: 552 5.2.2 Mailbox full (in reply to RCPT TO command)",
         "4.2.2 host mx.example[127.0.0.1] said: 552 5.2.2 Mailbox full (in reply to RCPT TO command)"},
        // Unknown user: bounce even though the remote said 4xx.
        {"4.1.1 host mx.example[127.0.0.1] said: 450 4.1.1 <bob@example.org>: Recipient address "
         "rejected: User unknown (in reply to RCPT TO command)",
         "5.1.1 host mx.example[127.0.0.1] said: 450 4.1.1 <bob@example.org>: Recipient address "
         "rejected: User unknown (in reply to RCPT TO command)"},
        // Already what the policy wants.
        {"5.1.1 host mx[1.2.3.4] said: 550 5.1.1 user unknown (in reply to RCPT TO command)", "NOTFOUND"},
        {"4.2.2 host mx[1.2.3.4] said: 452 4.2.2 Mailbox full (in reply to RCPT TO command)", "NOTFOUND"},
        // No enhanced code from the remote: Postfix says 5.0.0, the basic code and text decide.
        {"4.0.0 host mx[1.2.3.4] said: 450 no such user here (in reply to RCPT TO command)",
         "5.0.0 host mx[1.2.3.4] said: 450 no such user here (in reply to RCPT TO command)"},
        // Postfix's own texts.
        {"5.4.4 Host or domain name not found. Name service error for name=nx.example type=A: Host not found",
         "NOTFOUND"},
        {"4.4.1 connect to mx.example[192.0.2.1]:25: Connection refused", "NOTFOUND"},
        {"4.4.2 conversation with mx[1.2.3.4] timed out while receiving the initial server greeting", "NOTFOUND"},
        // A temporary DNS failure is bad-domain but soft: never bounced.
        {"4.4.3 Host or domain name not found. Name service error for name=x.example type=MX: Host not "
         "found, try again",
         "NOTFOUND"},
        // Categories that keep.
        {"4.7.1 host mx[1.2.3.4] said: 450 4.7.1 Client host rejected: cannot find your hostname (in "
         "reply to RCPT TO command)",
         "NOTFOUND"},
        {"5.7.1 host mx[1.2.3.4] said: 550 5.7.1 Message rejected as spam (in reply to end of DATA command)",
         "NOTFOUND"},
        // Not a 4.X.X or 5.X.X delivery status: left alone.
        {"2.0.0 host mx[1.2.3.4] said: 250 2.0.0 Ok: queued as ABC (in reply to end of DATA command)", "NOTFOUND"},
        {"", "NOTFOUND"},
        {"hello", "NOTFOUND"},
        {"5.1.1", "NOTFOUND"},  // no text: bad-mailbox by code, already 5
        {"4.1.1", "5.1.1"},
        {"9.1.1 text", "NOTFOUND"},
        {"4.1.1x text", "NOTFOUND"},
    };
    for (const auto& c : cases) {
        INFO(c.key);
        CHECK(filtered(c.key) == c.want);
    }
}

TEST_CASE("status filter: a remote reply inside the text wins over Postfix's status", "[status_filter]") {
    std::string scratch;
    FilterResult r = filter_status("4.0.0 host mx[1.2.3.4] said: 452 4.2.2 Mailbox full (in reply to RCPT TO command)",
                                   classifier(), StatusPolicy(), scratch);
    CHECK(r.kind == FilterResult::Kind::decided);
    CHECK(r.category == Category::quota_issues);
    CHECK(r.decision == Decision::defer);
    CHECK(r.new_class == 0);
}

TEST_CASE("status policy: built-in decisions", "[status_filter]") {
    StatusPolicy p;
    CHECK(p.decide(Category::quota_issues) == Decision::defer);
    CHECK(p.decide(Category::bad_mailbox) == Decision::bounce);
    CHECK(p.decide(Category::bad_domain) == Decision::bounce);
    CHECK(p.decide(Category::inactive_mailbox) == Decision::bounce);
    CHECK(p.decide(Category::message_expired) == Decision::bounce);
    for (Category c : {Category::spam_related, Category::policy_related, Category::other, Category::bad_connection,
                       Category::success})
        CHECK(p.decide(c) == Decision::keep);
}

TEST_CASE("status policy: file lines override, default resets the unnamed", "[status_filter]") {
    StatusPolicy p = StatusPolicy::parse(
        "# site policy\n"
        "category quota-issues keep   # let 552 bounce\n"
        "\n"
        "  category\tspam-related   defer\r\n",
        "site.conf");
    CHECK(p.decide(Category::quota_issues) == Decision::keep);
    CHECK(p.decide(Category::spam_related) == Decision::defer);
    CHECK(p.decide(Category::bad_mailbox) == Decision::bounce);  // built-in, not named

    p = StatusPolicy::parse("default keep\ncategory bad-mailbox bounce\n", "site.conf");
    CHECK(p.decide(Category::bad_mailbox) == Decision::bounce);
    CHECK(p.decide(Category::bad_domain) == Decision::keep);
    CHECK(p.decide(Category::quota_issues) == Decision::keep);

    p = StatusPolicy::parse("category bad-mailbox keep\ndefault defer", "site.conf");  // order free
    CHECK(p.decide(Category::bad_mailbox) == Decision::keep);
    CHECK(p.decide(Category::other) == Decision::defer);

    CHECK(filtered("5.2.2 host mx[1.2.3.4] said: 552 5.2.2 Mailbox full (in reply to RCPT TO command)",
                   StatusPolicy::parse("category quota-issues keep", "x")) == "NOTFOUND");
    CHECK(filtered("5.7.1 host mx[1.2.3.4] said: 550 5.7.1 Message rejected as spam (in reply to end of "
                   "DATA command)",
                   StatusPolicy::parse("category spam-related defer", "x"))
              .starts_with("4.7.1 host"));
}

TEST_CASE("status policy: errors name the file and line", "[status_filter]") {
    struct Case {
        const char* text;
        const char* error;
    };
    const Case cases[] = {
        {"category quota-issue defer\n", "p.conf:1: unknown category 'quota-issue' (see preflight-rules(5))"},
        {"\n# c\ncategory bad-mailbox drop\n", "p.conf:3: unknown decision 'drop' (want keep, defer or bounce)"},
        {"category bad-mailbox\n", "p.conf:1: want 'category NAME keep|defer|bounce'"},
        {"category bad-mailbox bounce now\n", "p.conf:1: want 'category NAME keep|defer|bounce'"},
        {"default\n", "p.conf:1: want 'default keep|defer|bounce'"},
        {"default keep\ndefault bounce\n", "p.conf:2: second default (the first is on line 1)"},
        {"category other keep\ncategory other bounce\n", "p.conf:2: category other already decided on line 1"},
        {"quota-issues defer\n", "p.conf:1: unknown statement 'quota-issues' (want category or default)"},
    };
    for (const auto& c : cases) {
        INFO(c.text);
        try {
            StatusPolicy::parse(c.text, "p.conf");
            FAIL("no error");
        } catch (const PolicyError& e) {
            CHECK(std::string(e.what()) == c.error);
        }
    }
    CHECK_THROWS_WITH(StatusPolicy::load("/nonexistent/p.conf"),
                      "/nonexistent/p.conf: cannot open: No such file or directory");
}
