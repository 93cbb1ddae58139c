// Every refusal of the milter's reply table, as preflight-classify reads it: with the shipped
// rules, `reply` and `dsn` say "rejected" (the sending relay refused, not a receiver) and name the
// category that fits the refusal. The replies are generated from the table itself (every row, and
// the 4xx twin of every 5xx row), so a new row or a reworded one without a matching rule in
// conf/rules/providers.rules fails here. The replies of other servers are in tests/data/reasons.tsv;
// preflight's own are deliberately not there.
#include <catch2/catch.hpp>

#include <string>

#include "bounce_classifier.hpp"
#include "bounce_message.hpp"
#include "reply_classifier.hpp"
#include "full_reply_args.hpp"
#include "reply_table.hpp"
#include "rule_set.hpp"
#include "verdict.hpp"

using namespace preflight;

namespace {

ReplyArgs full_args() { return full_reply_args("does not exist"); }

// The category each refusal must get. No default: a row added to the table must be added here,
// with a rule that gives it its category.
Category expected_category(ReplyId id) {
    switch (id) {
    case ReplyId::none: break;
    case ReplyId::sender_syntax: return Category::invalid_sender;
    case ReplyId::recipient_syntax: return Category::bad_mailbox;
    case ReplyId::address_needs_smtputf8: return Category::protocol_errors;
    case ReplyId::size_announced_too_big:
    case ReplyId::size_too_big: return Category::content_related;
    case ReplyId::too_many_recipients_temp:
    case ReplyId::too_many_recipients_perm: return Category::quota_issues;
    case ReplyId::sender_domain_unknown:
    case ReplyId::sender_domain_null_mx: return Category::invalid_sender;
    case ReplyId::recipient_domain_unknown:
    case ReplyId::recipient_domain_null_mx: return Category::bad_domain;
    case ReplyId::spf_required_failed:
    case ReplyId::spf_record_invalid:
    case ReplyId::dkim_required_failed:
    case ReplyId::dkim_signature_invalid:
    case ReplyId::dkim_key_invalid:
    case ReplyId::auth_failed:
    case ReplyId::auth_failed_all:
    case ReplyId::dmarc_record_missing:
    case ReplyId::dmarc_record_invalid:
    case ReplyId::from_domain_unaligned:
    case ReplyId::unsubscribe_missing:
    case ReplyId::unsubscribe_unsigned: return Category::policy_related;
    case ReplyId::header_invalid: return Category::content_related;
    case ReplyId::quota_exceeded_temp:
    case ReplyId::quota_exceeded_perm:
    case ReplyId::plan_exceeded_temp:
    case ReplyId::plan_exceeded_perm: return Category::quota_issues;
    case ReplyId::dns_temp_failure: return Category::bad_configuration;
    case ReplyId::recipient_suppressed: return Category::bad_mailbox;
    case ReplyId::suppressed_by_complaint:
    case ReplyId::suppressed_by_operator: return Category::policy_related;
    case ReplyId::suppression_unavailable: return Category::other;
    case ReplyId::quota_store_failure:
    case ReplyId::shutting_down:
    case ReplyId::internal_temp_failure: return Category::other;
    }
    FAIL("no expected category for " << to_string(id));
    return Category::other;
}

// The reply on the wire: "550-5.7.26 first\r\n550 5.7.26 last" ('%' as the client sees it).
std::string wire(const SmtpReply& r) {
    std::string out;
    for (std::size_t i = 0; i < r.lines.size(); ++i) {
        std::string line;
        for (std::size_t k = 0; k < r.lines[i].size(); ++k) {
            line += r.lines[i][k];
            if (r.lines[i][k] == '%' && k + 1 < r.lines[i].size() && r.lines[i][k + 1] == '%') ++k;
        }
        out += std::to_string(r.code) + (i + 1 < r.lines.size() ? "-" : " ") + r.enhanced + " " + line;
        if (i + 1 < r.lines.size()) out += "\r\n";
    }
    return out;
}

// A bounce as Postfix writes it for a remote refusal: the reply in the human-readable part
// ("host ... said: 550-5.7.26 ... 550 5.7.26 ...", wrapped) and in Diagnostic-Code, folded.
std::string postfix_bounce(const SmtpReply& r, std::string_view stage) {
    std::string joined;
    for (std::size_t i = 0; i < r.lines.size(); ++i) {
        if (i) joined += ' ';
        joined += std::to_string(r.code) + (i + 1 < r.lines.size() ? "-" : " ") + r.enhanced + " " + r.lines[i];
    }
    auto fold = [](const std::string& s, std::string_view indent) {
        std::string out;
        std::size_t col = 0;
        std::size_t i = 0;
        while (i < s.size()) {
            std::size_t sp = s.find(' ', i);
            std::string word = s.substr(i, sp == std::string::npos ? std::string::npos : sp - i);
            if (col && col + 1 + word.size() > 76) {
                out += "\n";
                out += indent;
                col = indent.size();
            } else if (col) {
                out += ' ';
                ++col;
            }
            out += word;
            col += word.size();
            if (sp == std::string::npos) break;
            i = sp + 1;
        }
        return out;
    };
    std::string m =
        "From: MAILER-DAEMON@mta.customer.example (Mail Delivery System)\n"
        "To: user@example.org\n"
        "Subject: Undelivered Mail Returned to Sender\n"
        "Message-Id: <20261201120000.ABC123@mta.customer.example>\n"
        "MIME-Version: 1.0\n"
        "Content-Type: multipart/report; report-type=delivery-status;\n"
        "\tboundary=\"ABC123.1700000000/mta.customer.example\"\n"
        "\n"
        "--ABC123.1700000000/mta.customer.example\n"
        "Content-Type: text/plain; charset=us-ascii\n"
        "\n"
        "This is the mail system at host mta.customer.example.\n"
        "\n"
        "I'm sorry to have to inform you that your message could not\n"
        "be delivered to one or more recipients.\n"
        "\n";
    m += fold("<rcpt@example.net>: host relay.example[192.0.2.1] said: " + joined + " (in reply to " +
                  std::string(stage) + " command)",
              "    ");
    m += "\n\n--ABC123.1700000000/mta.customer.example\n"
         "Content-Type: message/delivery-status\n"
         "\n"
         "Reporting-MTA: dns; mta.customer.example\n"
         "X-Postfix-Queue-ID: ABC123\n"
         "\n"
         "Final-Recipient: rfc822; rcpt@example.net\n"
         "Original-Recipient: rfc822;rcpt@example.net\n"
         "Action: failed\n";
    m += "Status: " + r.enhanced + "\n";
    m += "Remote-MTA: dns; relay.example\n";
    m += fold("Diagnostic-Code: smtp; " + joined, "    ");
    m += "\n\n--ABC123.1700000000/mta.customer.example--\n";
    return m;
}

struct Case {
    std::string name;
    Verdict verdict;
};

std::vector<Case> every_refusal() {
    std::vector<Case> cases;
    for (const ReplyRow& row : reply_table()) {
        if (row.id == ReplyId::none) continue;
        std::string name(to_string(row.id));
        if (row.code >= 500) {
            cases.push_back({name, Verdict::reject("test", row.id, full_args())});
            cases.push_back({name + " (4xx twin)",
                             apply_mode(Verdict::reject("test", row.id, full_args()), CheckMode::tempfail, false)});
        } else {
            cases.push_back({name, Verdict::tempfail("test", row.id, full_args())});
        }
    }
    return cases;
}

}  // namespace

TEST_CASE("edge replies: every refusal of the reply table ends with the marker line", "[checks][reply][edge]") {
    for (const Case& c : every_refusal()) {
        INFO(c.name);
        SmtpReply r = render(c.verdict);
        REQUIRE(r.code >= 400);
        REQUIRE(r.lines.size() >= 2);
        CHECK(r.lines.back() == refusal_marker);
    }
    // Not on an acceptance, not in a tag header (the message goes on).
    SmtpReply ok = render(Verdict::accept("test"));
    CHECK(ok.lines.back() != refusal_marker);
    Verdict tagged = apply_mode(Verdict::reject("auth", ReplyId::auth_failed, full_args()), CheckMode::tag, false);
    CHECK(tag_header(tagged).value.find("preflight check") == std::string::npos);
}

TEST_CASE("edge replies: `reply` and `dsn` classify every refusal as rejected, with its category",
          "[checks][reply][edge]") {
    ReplyClassifier cl(RuleSetBuilder().add_shipped().build());
    std::string scratch;
    for (const Case& c : every_refusal()) {
        SmtpReply r = render(c.verdict);
        const Category want = expected_category(c.verdict.reply);
        const std::string on_wire = wire(r);
        INFO(c.name << ": " << on_wire);

        // As the client saw it, and without knowing where it came from (Origin::remote).
        Classification got = cl.classify(on_wire, Origin::remote, scratch);
        REQUIRE(got.error == Classification::Error::none);
        CHECK(to_string(got.status) == to_string(Status::rejected));
        CHECK(to_string(got.category) == to_string(want));
        CHECK(got.code == r.code);
        REQUIRE(got.rule != nullptr);
        CHECK(got.rule->location.find("providers.rules") != std::string::npos);
        if (got.bounce != Bounce::hard) CHECK(got.retry == (r.code / 100 == 4));  // a hard bounce is never retried

        // In the bounce the customer's Postfix returns to the sender.
        const std::string stage = c.verdict.check == "recipients" ? "RCPT TO" : "end of DATA";
        const std::string bounce = postfix_bounce(r, stage);
        BounceReport report = parse_bounce_message(bounce);
        REQUIRE(report.error.empty());
        REQUIRE(report.recipients.size() == 1);
        std::vector<BounceVerdict> vs = classify_bounce(report, cl, scratch);
        REQUIRE(vs.size() == 1);
        INFO("diagnostic: " << vs[0].diagnostic);
        CHECK(to_string(vs[0].status) == to_string(Status::rejected));
        CHECK(to_string(vs[0].category) == to_string(want));
        CHECK(vs[0].code == r.code);
        char enh[12];
        CHECK(std::string(enh, vs[0].enhanced.format(enh)) == r.enhanced);
    }
}

TEST_CASE("edge replies: the same words from a receiver, without the marker, are no relay refusal",
          "[checks][reply][edge]") {
    ReplyClassifier cl(RuleSetBuilder().add_shipped().build());
    std::string scratch;
    for (const Case& c : every_refusal()) {
        SmtpReply r = render(c.verdict);
        r.lines.pop_back();  // the marker
        INFO(c.name << ": " << wire(r));
        Classification got = cl.classify(wire(r), Origin::remote, scratch);
        REQUIRE(got.error == Classification::Error::none);
        CHECK(to_string(got.status) != to_string(Status::rejected));
    }
}
