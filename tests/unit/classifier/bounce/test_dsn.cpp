// The dsn command's parsers and classification on small hand-written bounces (tests/data/dsn).
#include <catch2/catch.hpp>

#include <fstream>
#include <iterator>
#include <random>

#include "bounce_classifier.hpp"
#include "dsn_command.hpp"
#include "free_text_bounce.hpp"

using namespace preflight;

namespace {

std::string fixture(const std::string& name) {
    std::ifstream in(std::string(PREFLIGHT_TEST_DATA) + "/dsn/" + name, std::ios::binary);
    return std::string((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
}

const ReplyClassifier& classifier() {
    static const ReplyClassifier cl(RuleSetBuilder().add_shipped().build());
    return cl;
}

std::vector<BounceVerdict> verdicts(const BounceReport& r) {
    std::string scratch;
    return classify_bounce(r, classifier(), scratch);
}

}  // namespace

TEST_CASE("delivery-status fields: blocks, continuation lines, either recipient order") {
    DsnFields f = parse_delivery_status(
        "Reporting-MTA: dns; mx.example.org\r\nX-Postfix-Queue-ID: ABC\r\n\r\n"
        "Final-Recipient: rfc822; a@example.com\r\nOriginal-Recipient: rfc822;a@example.com\r\n"
        "Action: Failed\r\nStatus: 5.1.1 (bad mailbox)\r\nDiagnostic-Code: smtp; 550 5.1.1\r\n  no such user\r\n\r\n"
        "Original-Recipient: rfc822; b@example.com\r\nFinal-Recipient: rfc822; <b@example.com>\r\nAction: delayed\r\n"
        "Status: 4.4.1\r\nRemote-MTA: dns; mx.example.com\r\n");
    REQUIRE(f.recipients.size() == 2);
    CHECK(f.reporting_mta == "mx.example.org");
    CHECK(f.queue_id == "ABC");
    CHECK(f.recipients[0].recipient() == "a@example.com");
    CHECK(f.recipients[0].action == "failed");
    CHECK(f.recipients[0].status == "5.1.1");
    CHECK(f.recipients[0].diagnostic == "smtp; 550 5.1.1 no such user");
    CHECK(f.recipients[1].recipient() == "b@example.com");
    CHECK(f.recipients[1].remote_mta == "mx.example.com");
}

TEST_CASE("delivery-status fields: Action, Status and Diagnostic-Code before the recipient line") {
    // RFC 3464's grammar puts Final-Recipient first; some gateways write it last in the block.
    // The block is the recipient's, whatever the order; a blank line ends it.
    DsnFields f = parse_delivery_status(
        "Reporting-MTA: dns; gw.example.org\r\n\r\n"
        "Action: failed\r\nStatus: 5.0.0\r\nRemote-MTA: dns; mx.example.com\r\n"
        "Diagnostic-Code: smtp; 550 a@example.com... No such user\r\nFinal-Recipient: rfc822; a@example.com\r\n\r\n"
        "Action: delayed\r\nStatus: 4.4.1\r\n\r\n"
        "Final-Recipient: rfc822; b@example.com\r\nAction: failed\r\nStatus: 5.2.2\r\n");
    REQUIRE(f.recipients.size() == 2);
    CHECK(f.recipients[0].recipient() == "a@example.com");
    CHECK(f.recipients[0].action == "failed");
    CHECK(f.recipients[0].status == "5.0.0");
    CHECK(f.recipients[0].remote_mta == "mx.example.com");
    CHECK(f.recipients[0].diagnostic == "smtp; 550 a@example.com... No such user");
    // A block with no address lends its fields to nobody.
    CHECK(f.recipients[1].recipient() == "b@example.com");
    CHECK(f.recipients[1].action == "failed");
    CHECK(f.recipients[1].status == "5.2.2");
}

TEST_CASE("free text: recipients in order, reasons, ignored addresses") {
    std::string text =
        "Hi. This is the qmail-send program at example.org.\n"
        "I'm afraid I wasn't able to deliver your message to the following addresses.\n\n"
        "<a@example.com>:\nRemote host said: 550 5.1.1 <sender@example.net>... User unknown\n\n"
        "<b@example.com>:\nRemote host said: 552 Mailbox full\n\n";
    FreeTextBounce ft = parse_free_text_bounce(text, {"sender@example.net"});
    REQUIRE(ft.recipients.size() == 2);
    CHECK(ft.recipients[0].recipient == "a@example.com");
    CHECK(ft.recipients[0].reason.find("User unknown") != std::string::npos);
    CHECK(ft.recipients[1].recipient == "b@example.com");
    CHECK(ft.recipients[1].reason.find("Mailbox full") != std::string::npos);
    CHECK(ft.intro.find("qmail-send") != std::string::npos);
    CHECK(reply_from_text("Remote host said: 552 Mailbox full").starts_with("552 "));
    CHECK(reply_from_text("host 192.0.2.1 said: 550 5.1.1 no").starts_with("550 5.1.1 "));
    CHECK(cut_returned_message("why\n--- Below this line is a copy of the message.\nFrom: x\n") == "why\n");
}

TEST_CASE("split_mbox") {
    auto one = split_mbox("From: a@b\n\nbody\n");
    REQUIRE(one.size() == 1);
    auto two = split_mbox(
        "From a@b Mon Jan  1 00:00:00 2024\nSubject: 1\n\nx\nFrom a@b Mon Jan  1 00:00:01 2024\nSubject: 2\n\ny\n");
    REQUIRE(two.size() == 2);
    CHECK(two[0] == "Subject: 1\n\nx\n");
    CHECK(two[1] == "Subject: 2\n\ny\n");
}

TEST_CASE("Postfix DSN: two recipients, fields and classification") {
    BounceReport r = parse_bounce_message(fixture("postfix-dsn.eml"));
    REQUIRE(r.error.empty());
    CHECK(r.kind == ReportKind::dsn);
    CHECK(r.reporting_mta == "mx.example.org");
    CHECK(r.queue_id == "4ABCD1234");
    CHECK(r.message_id == "orig-1@example.net");
    auto v = verdicts(r);
    REQUIRE(v.size() == 2);
    CHECK(v[0].recipient->recipient == "bob@example.com");
    CHECK(v[0].status == Status::bounce);
    CHECK(v[0].bounce == Bounce::hard);
    CHECK(v[0].category == Category::bad_mailbox);
    CHECK(v[0].code == 550);
    CHECK(v[0].enhanced == EnhancedCode{5, 1, 1});
    CHECK(v[1].recipient->recipient == "carol@example.com");
    CHECK(v[1].category == Category::quota_issues);
    CHECK(v[1].bounce == Bounce::soft);
}

TEST_CASE("delayed DSN is deferred and never hard") {
    auto v = verdicts(parse_bounce_message(fixture("delayed-dsn.eml")));
    REQUIRE(v.size() == 2);
    for (auto& x : v) {
        CHECK(x.status == Status::deferred);
        CHECK(x.bounce == Bounce::soft);
    }
    CHECK(v[0].enhanced == EnhancedCode{4, 4, 1});  // from Status: the diagnostic has no code
}

TEST_CASE("Exim free-text bounce") {
    BounceReport r = parse_bounce_message(fixture("exim-freetext.eml"));
    CHECK(r.kind == ReportKind::non_standard);
    CHECK(r.message_id == "orig-2@example.net");
    auto v = verdicts(r);
    REQUIRE(v.size() == 1);
    CHECK(v[0].recipient->recipient == "dave@example.com");
    CHECK(v[0].category == Category::bad_mailbox);
    CHECK(v[0].bounce == Bounce::hard);
}

TEST_CASE("quoted-printable ISO-8859-1 bounce is decoded to UTF-8") {
    BounceReport r = parse_bounce_message(fixture("qp-localised.eml"));
    CHECK(r.subject == "Unzustellbar: Hallo");
    auto v = verdicts(r);
    REQUIRE(v.size() == 1);
    CHECK(v[0].recipient->recipient == "erik@example.de");
    CHECK(v[0].diagnostic.find("\xC3\xBC"
                               "ber") != std::string::npos);  // "über"
    CHECK(v[0].category == Category::quota_issues);
}

TEST_CASE("vacation reply and ARF report are never hard bounces") {
    BounceReport vac = parse_bounce_message(fixture("vacation.eml"));
    CHECK(vac.kind == ReportKind::auto_reply);
    auto v = verdicts(vac);
    REQUIRE(v.size() == 1);
    CHECK(v[0].recipient->recipient == "frank@example.com");
    CHECK(v[0].bounce == Bounce::none);
    BounceReport arf = parse_bounce_message(fixture("arf.eml"));
    CHECK(arf.kind == ReportKind::feedback_report);
    v = verdicts(arf);
    REQUIRE(v.size() == 1);
    CHECK(v[0].recipient->recipient == "grace@isp.example");
    CHECK(v[0].bounce == Bounce::none);
}

TEST_CASE("bad input: truncated, binary, empty, too many parts") {
    BounceReport t = parse_bounce_message(fixture("truncated.eml"));
    CHECK((t.truncated || !t.error.empty()));
    CHECK(parse_bounce_message(std::string("\x7f"
                                           "ELF\x02\x01\x01\0\0\0binary",
                                           17))
              .error.find("binary") != std::string::npos);
    CHECK(!parse_bounce_message("").error.empty());
    CHECK(!parse_bounce_message("no header here\njust text\n").error.empty());
    std::string many = "From: a@b\nContent-Type: multipart/mixed; boundary=X\n\n";
    for (int i = 0; i < 50; ++i) many += "--X\nContent-Type: text/plain\n\nx\n";
    many += "--X--\n";
    BounceLimits lim;
    lim.max_parts = 20;
    CHECK(parse_bounce_message(many, lim).error.find("more than 20 MIME parts") != std::string::npos);
}

TEST_CASE("bad input: a MIME nesting bomb is refused, not followed") {
    // 10,000 multiparts each holding the next: a clear error, in bounded time and stack.
    std::string bomb = "From: a@b\nContent-Type: multipart/mixed; boundary=B0\n\n";
    const int depth = 10000;
    for (int i = 0; i < depth; ++i)
        bomb +=
            "--B" + std::to_string(i) + "\nContent-Type: multipart/mixed; boundary=B" + std::to_string(i + 1) + "\n\n";
    for (int i = depth; i >= 0; --i) bomb += "--B" + std::to_string(i) + "--\n";
    BounceReport r = parse_bounce_message(bomb);
    CHECK(!r.error.empty());
    CHECK(r.recipients.empty());
}

TEST_CASE("a stray NUL byte does not make a bounce binary data") {
    std::string msg =
        "From: MAILER-DAEMON@example.jp\nTo: sender@example.org\nSubject: Delivery failure\n\n"
        "Unable to deliver message to the following address(es).\n\n<kim@example.jp>:\n"
        "Sorry, your message to kim@example.jp cannot be delivered. This account is over quota.\n";
    msg.push_back('\0');
    msg.push_back('\n');
    BounceReport r = parse_bounce_message(msg);
    REQUIRE(r.error.empty());
    auto v = verdicts(r);
    REQUIRE(v.size() == 1);
    CHECK(v[0].recipient->recipient == "kim@example.jp");
    CHECK(v[0].category == Category::quota_issues);
}

TEST_CASE("random bytes are binary data every time, 8-bit Latin-1 text is not") {
    // The CLI test feeds /dev/urandom; the verdict must not depend on which bytes came.
    for (unsigned seed = 1; seed <= 300; ++seed) {
        std::mt19937 gen(seed);
        std::string junk(20000, '\0');
        for (char& c : junk) c = static_cast<char>(gen() & 0xff);
        INFO("seed " << seed);
        CHECK(parse_bounce_message(junk).error == "binary data, not a mail message");
    }
    std::string latin1 = "From: MAILER-DAEMON@example.de\nTo: sender@example.org\nSubject: Unzustellbar\n\n";
    for (int i = 0; i < 60; ++i)
        latin1 +=
            "Die Nachricht an <j\xfcrgen@example.de> konnte nicht zugestellt werden: Postfach \xfc"
            "berf\xfc"
            "llt, "
            "gr\xf6\xdf"
            "er als erlaubt.\n";
    BounceReport r = parse_bounce_message(latin1);
    CHECK(r.error != "binary data, not a mail message");
}

TEST_CASE("feedback reports: report type only, fields as text, redacted complainant") {
    // multipart/report; report-type=feedback-report whose fields come as text/plain, no address.
    std::string arf =
        "From: fbl@isp.example\nTo: abuse@sender.example\nSubject: Abuse report\nMIME-Version: 1.0\n"
        "Content-Type: multipart/report; report-type=feedback-report; boundary=B\n\n"
        "--B\nContent-Type: text/plain\n\nThis is an abuse report.\n\n"
        "--B\nContent-Type: text/plain\n\nFeedback-Type: abuse\nUser-Agent: FBL/1.0\nVersion: 1\n\n"
        "--B\nContent-Type: message/rfc822\n\nFrom: news@sender.example\nTo: undisclosed-recipients:;\n"
        "Subject: Offer\n\nhello\n--B--\n";
    BounceReport r = parse_bounce_message(arf);
    CHECK(r.kind == ReportKind::feedback_report);
    auto v = verdicts(r);
    REQUIRE(v.size() == 1);
    CHECK(v[0].recipient->recipient.empty());
    CHECK(v[0].bounce == Bounce::none);
    // Only the report type says it: still a complaint, and the JMRP header names the complainant.
    std::string typed =
        "From: staff@hotmail.example\nTo: fbl@sender.example\nSubject: complaint\nMIME-Version: 1.0\n"
        "Content-Type: multipart/report; report-type=\"feedback-report\"; boundary=C\n\n"
        "--C\nContent-Type: text/plain\n\nA complaint.\n\n"
        "--C\nContent-Type: message/rfc822\n\nX-HmXmrOriginalRecipient: <heidi@hotmail.example>\n"
        "From: news@sender.example\nTo: heidi@hotmail.example\nSubject: Offer\n\nhello\n--C--\n";
    r = parse_bounce_message(typed);
    CHECK(r.kind == ReportKind::feedback_report);
    v = verdicts(r);
    REQUIRE(v.size() == 1);
    CHECK(v[0].recipient->recipient == "heidi@hotmail.example");
    CHECK(v[0].bounce == Bounce::none);
}

TEST_CASE("expiry: the last attempt's error decides the category and code, expiry the status") {
    auto one = [](const std::string& text) {
        std::string msg =
            "From: MAILER-DAEMON@mx.example.org\nTo: sender@example.org\nSubject: failure notice\n\n"
            "Hi. This is the qmail-send program at mx.example.org.\n"
            "I'm afraid I wasn't able to deliver your message to the following addresses.\n\n" +
            text;
        BounceReport r = parse_bounce_message(msg);
        std::string scratch;
        auto v = classify_bounce(r, classifier(), scratch);
        REQUIRE(v.size() == 1);
        return v[0];
    };
    BounceVerdict full =
        one("<ann@example.com>:\nRemote host said: 452 4.2.2 Mailbox full\n"
            "I'm not going to try again; this message has been in the queue too long.\n");
    CHECK(full.status == Status::expired);
    CHECK(full.category == Category::quota_issues);
    CHECK(full.enhanced == EnhancedCode{4, 2, 2});
    BounceVerdict helo =
        one("<ann@example.com>:\nConnected to 192.0.2.1 but my name was rejected.\n"
            "I'm not going to try again; this message has been in the queue too long.\n");
    CHECK(helo.status == Status::expired);
    CHECK(helo.category == Category::policy_related);
    // Nothing but the expiry: it stays message-expired.
    BounceVerdict bare =
        one("<ann@example.com>:\n"
            "I'm not going to try again; this message has been in the queue too long.\n");
    CHECK(bare.status == Status::expired);
    CHECK(bare.category == Category::message_expired);
    // A DSN whose diagnostic quotes the last reply after the expiry: its code is the specific one.
    std::string scratch;
    BounceReport r;
    r.kind = ReportKind::dsn;
    r.recipients.push_back(
        {"bo@example.com",
         "failed",
         "4.4.7",
         "smtp; 554 4.4.7 Message expired: unable to deliver in 840 minutes.<421 4.4.2 Connection timed out>",
         {}});
    auto v = classify_bounce(r, classifier(), scratch);
    REQUIRE(v.size() == 1);
    CHECK(v[0].status == Status::expired);
    CHECK(v[0].category == Category::no_answer_from_host);
    CHECK(v[0].enhanced == EnhancedCode{4, 4, 2});
}

TEST_CASE("a bounce nested in another one is read: attached or pasted") {
    BounceReport r = parse_bounce_message(fixture("nested-dsn.eml"));
    CHECK(r.kind == ReportKind::dsn);
    auto v = verdicts(r);
    REQUIRE(v.size() == 1);
    CHECK(v[0].recipient->recipient == "ivan@example.org");
    CHECK(v[0].category == Category::bad_mailbox);
    CHECK(v[0].enhanced == EnhancedCode{5, 1, 1});
    // A provider's notice with the whole report pasted below its own words.
    std::string pasted =
        "From: MAILER-DAEMON@relay.example.net\nTo: user@example.net\nSubject: Undelivered Mail\n\n"
        "The message below could not be delivered. For help, contact <support@example.net>.\n\n"
        "---------------------------------\n"
        "From MAILER-DAEMON  Mon Jun  3 10:00:00 2024\n"
        "Return-Path: <>\nReceived: from a by b; Mon, 3 Jun 2024 10:00:00 +0900\n"
        "Received: from c by d; Mon, 3 Jun 2024 10:00:00 +0900\n"
        "From: MAILER-DAEMON@mx.example.org\nSubject: Undelivered Mail Returned to Sender\nMIME-Version: 1.0\n"
        "Content-Type: multipart/report; report-type=delivery-status; boundary=\"P\"\n\n"
        "--P\nContent-Type: text/plain\n\nThis is the mail system.\n\n"
        "--P\nContent-Type: message/delivery-status\n\nReporting-MTA: dns; mx.example.org\n\n"
        "Final-Recipient: rfc822; judy@example.com\nAction: failed\nStatus: 4.0.0\n"
        "Diagnostic-Code: X-Postfix; delivery temporarily suspended: connect to mx.example.com[192.0.2.1]:\n"
        "    server refused to talk to me: 421 Service not available\n\n--P--\n";
    r = parse_bounce_message(pasted);
    CHECK(r.kind == ReportKind::dsn);
    v = verdicts(r);
    REQUIRE(v.size() == 1);
    CHECK(v[0].recipient->recipient == "judy@example.com");
    CHECK(v[0].category == Category::policy_related);
    CHECK(v[0].enhanced == EnhancedCode{4, 0, 0});
}

TEST_CASE("Amazon SES notifications: bounce in the SNS envelope, delivery, complaint") {
    BounceReport r = parse_bounce_message(fixture("ses-sns.eml"));
    CHECK(r.kind == ReportKind::dsn);
    CHECK(r.message_id == "ses-1@sender.example");
    auto v = verdicts(r);
    REQUIRE(v.size() == 1);
    CHECK(v[0].recipient->recipient == "kate@example.com");
    CHECK(v[0].category == Category::quota_issues);  // from bounceSubType MailboxFull
    CHECK(v[0].bounce == Bounce::soft);

    SesNotification n;
    REQUIRE(parse_ses_notification(
        "{\"notificationType\":\"Delivery\",\"mail\":{\"messageId\":\"m1\"},\"delivery\":{\"recipients\":"
        "[\"leo@example.com\",\"mia@example.com\"],\"smtpResponse\":\"250 2.6.0 Message received\",\"reportingMTA\":\"a1.example\"}}",
        n));
    CHECK(n.type == SesNotification::Type::delivery);
    REQUIRE(n.recipients.size() == 2);
    CHECK(n.recipients[1].recipient() == "mia@example.com");
    CHECK(n.recipients[0].status == "2.6.0");
    CHECK(n.message_id == "m1");

    std::string complaint =
        "From: no-reply@sns.amazonaws.com\nTo: fbl@sender.example\nSubject: AWS Notification Message\n\n"
        "{\"eventType\":\"Complaint\",\"complaint\":{\"complainedRecipients\":[{\"emailAddress\":\"ned@example.com\"}],"
        "\"complaintFeedbackType\":\"abuse\"},\"mail\":{\"messageId\":\"m2\"}}\n";
    r = parse_bounce_message(complaint);
    CHECK(r.kind == ReportKind::feedback_report);
    v = verdicts(r);
    REQUIRE(v.size() == 1);
    CHECK(v[0].recipient->recipient == "ned@example.com");
    CHECK(v[0].bounce == Bounce::none);
    CHECK_FALSE(parse_ses_notification("{\"Type\": \"x\", \"broken\": [1, 2", n));
    CHECK_FALSE(parse_ses_notification("no json here", n));
}

TEST_CASE("Amazon SES notifications as mail systems pass them on: wrapped lines, a footer, deep nesting") {
    SesNotification n;
    // A line break inside a string (a mail system wrapped the line) and a footer after the object.
    REQUIRE(
        parse_ses_notification("{\"notificationType\":\"Bounce\",\"bounce\":{\"bounceType\":\"Permanent\","
                               "\"bouncedRecipients\":[{\"emailAddress\":\"kim@example.com\",\"diagnosticCode\":"
                               "\"smtp; 550 5.1.1 user\n unknown\"}]}}\n--\nUnsubscribe: https://x.example/u {x}\n",
                               n));
    REQUIRE(n.recipients.size() == 1);
    CHECK(n.recipients[0].recipient() == "kim@example.com");
    CHECK(n.recipients[0].diagnostic == "smtp; 550 5.1.1 user\n unknown");
    // Nesting far beyond any notification is refused, not recursed into.
    std::string deep =
        "{\"notificationType\":\"Bounce\",\"bounce\":" + std::string(5000, '[') + std::string(5000, ']') + "}";
    CHECK_FALSE(parse_ses_notification(deep, n));
}

TEST_CASE("free text: the sender's address and the details below a lone address") {
    // Exim: "A message sent by <sender>" names the sender, X-Failed-Recipients the recipient.
    std::string exim =
        "From: Mail Delivery System <Mailer-Daemon@mx.example.org>\nTo: owner@example.org\n"
        "Subject: Mail delivery failed\nX-Failed-Recipients: olga@example.net\n\n"
        "This message was created automatically by mail delivery software.\n\nA message sent by\n\n"
        "  <list-bounces@example.org>\n\ncould not be delivered to one or more of its recipients. The following\n"
        "address(es) failed:\n\n  olga@example.net\n    (generated from staff@example.org)\n"
        "    retry timeout exceeded\n";
    BounceReport r = parse_bounce_message(exim);
    auto v = verdicts(r);
    REQUIRE(v.size() == 1);
    CHECK(v[0].recipient->recipient == "olga@example.net");
    CHECK(v[0].category == Category::message_expired);
    // Gmail: the address alone, the reply quoted in the technical details below it.
    FreeTextBounce ft = parse_free_text_bounce(
        "Delivery to the following recipient has been delayed:\n\n     pam@example.jp\n\n"
        "Message will be retried for 2 more day(s)\n\nTechnical details of temporary failure:\n"
        "The error that the other server returned was: 452 4.2.2 <pam@example.jp>... Mailbox full\n",
        {});
    REQUIRE(ft.recipients.size() == 1);
    CHECK(ft.recipients[0].reason.find("4.2.2") != std::string::npos);
    // A recipient whose own block quotes the reply keeps it alone.
    ft = parse_free_text_bounce("<quinn@example.com>:\n550 5.1.1 unknown user\n\nPlease contact your administrator.\n",
                                {});
    REQUIRE(ft.recipients.size() == 1);
    CHECK(ft.recipients[0].reason.find("administrator") == std::string::npos);
}

TEST_CASE("iso-2022-jp and koi8-r bounces: the decoded reason is classified") {
    BounceReport jp = parse_bounce_message(fixture("iso2022jp-quota.eml"));
    REQUIRE(jp.error.empty());
    CHECK(jp.subject == "\xE9\x85\x8D\xE4\xBF\xA1\xE3\x82\xA8\xE3\x83\xA9\xE3\x83\xBC");  // 配信エラー
    auto v = verdicts(jp);
    REQUIRE(v.size() == 1);
    CHECK(v[0].recipient->recipient == "taro@example.jp");
    // メールボックスの容量 ("the mailbox's capacity"), decoded from ISO-2022-JP to UTF-8.
    CHECK(
        v[0].diagnostic.find("\xE3\x83\xA1\xE3\x83\xBC\xE3\x83\xAB\xE3\x83\x9C\xE3\x83\x83\xE3\x82\xAF\xE3\x82\xB9") !=
        std::string::npos);
    CHECK(v[0].category == Category::quota_issues);
    CHECK(v[0].bounce == Bounce::soft);

    BounceReport ru = parse_bounce_message(fixture("koi8r-unknown.eml"));
    REQUIRE(ru.error.empty());
    v = verdicts(ru);
    REQUIRE(v.size() == 1);
    CHECK(v[0].recipient->recipient == "ivanov@example.ru");
    // "адрес получателя не существует" (the recipient address does not exist), base64 KOI8-R.
    CHECK(v[0].diagnostic.find("\xD0\xB0\xD0\xB4\xD1\x80\xD0\xB5\xD1\x81") != std::string::npos);  // адрес
    CHECK(v[0].category == Category::bad_mailbox);
    CHECK(v[0].bounce == Bounce::hard);
}

TEST_CASE("a refusal in reply to MAIL FROM is about the sender, not the recipient") {
    std::string scratch;
    BounceReport r;
    r.kind = ReportKind::non_standard;
    r.recipients.push_back({"rob@example.org",
                            {},
                            {},
                            "rob@example.org host mx.example.org [192.0.2.2] SMTP error from remote mail server after "
                            "MAIL FROM:<news@sender.example> SIZE=1022: 553 5.1.8 sender.example does not exist",
                            {}});
    r.recipients.push_back({"sue@example.org",
                            "failed",
                            "5.1.1",
                            "smtp; 550 5.1.1 <sue@example.org>: Recipient address rejected: User unknown",
                            {}});
    auto v = classify_bounce(r, classifier(), scratch);
    REQUIRE(v.size() == 2);
    CHECK(v[0].category == Category::invalid_sender);
    CHECK(v[0].bounce != Bounce::hard);
    CHECK(v[1].category == Category::bad_mailbox);
    CHECK(v[1].bounce == Bounce::hard);
}

namespace {
// A one-recipient RFC 3464 report with the given Status and Diagnostic-Code.
std::string dsn_with(const std::string& status, const std::string& diagnostic) {
    return "From: MAILER-DAEMON@mx.example.org\r\nTo: sender@example.net\r\nSubject: Undelivered Mail\r\n"
           "MIME-Version: 1.0\r\nContent-Type: multipart/report; report-type=delivery-status; boundary=\"B\"\r\n\r\n"
           "--B\r\nContent-Type: text/plain\r\n\r\nYour message could not be delivered.\r\n\r\n"
           "--B\r\nContent-Type: message/delivery-status\r\n\r\nReporting-MTA: dns; mx.example.org\r\n\r\n"
           "Final-Recipient: rfc822; bob@example.com\r\nAction: failed\r\nStatus: " +
           status + "\r\nDiagnostic-Code: smtp; " + diagnostic + "\r\n\r\n--B--\r\n";
}
}  // namespace

TEST_CASE("a diagnostic without an enhanced code: vague words yield to the DSN's Status") {
    auto proven = verdicts(parse_bounce_message(dsn_with("5.1.1", "550 Address rejected")));
    REQUIRE(proven.size() == 1);
    CHECK(proven[0].category == Category::bad_mailbox);
    CHECK(proven[0].bounce == Bounce::hard);
    CHECK(proven[0].enhanced == EnhancedCode{5, 1, 1});
    // The reporting MTA's generic 5.0.0 proves nothing: the words stay, and they are not proof.
    auto generic = verdicts(parse_bounce_message(dsn_with("5.0.0", "550 Address rejected")));
    REQUIRE(generic.size() == 1);
    CHECK(generic[0].bounce == Bounce::soft);
    // Precise words keep their precedence over the Status.
    auto worded = verdicts(parse_bounce_message(dsn_with("5.1.1", "552 Mailbox full")));
    REQUIRE(worded.size() == 1);
    CHECK(worded[0].category == Category::quota_issues);
}

TEST_CASE("no enhanced code reported: the category's code, derived and marked so") {
    const std::string msg =
        "From: MAILER-DAEMON@mx.example.org\r\nTo: sender@example.net\r\nSubject: failure notice\r\n\r\n"
        "Hi. This is the qmail-send program at mx.example.org.\r\n"
        "I'm afraid I wasn't able to deliver your message to the following addresses.\r\n\r\n"
        "<a@example.com>:\r\nRemote host said: 552 Mailbox full\r\n\r\n";
    BounceReport r = parse_bounce_message(msg);
    auto v = verdicts(r);
    REQUIRE(v.size() == 1);
    CHECK(v[0].category == Category::quota_issues);
    CHECK(v[0].enhanced == EnhancedCode{5, 2, 2});
    CHECK(v[0].enhanced_derived);
    std::string out;
    append_verdict(out, Format::json, "f", r, v[0]);
    CHECK(out.find("\"enhanced\": \"5.2.2\", \"enhanced_source\": \"derived\"") != std::string::npos);
    // A reported one stays reported.
    BounceReport reported = parse_bounce_message(dsn_with("5.1.1", "550 5.1.1 no such user"));
    auto rv = verdicts(reported);
    REQUIRE(rv.size() == 1);
    CHECK_FALSE(rv[0].enhanced_derived);
    out.clear();
    append_verdict(out, Format::json, "f", reported, rv[0]);
    CHECK(out.find("\"enhanced\": \"5.1.1\", \"enhanced_source\": \"reported\"") != std::string::npos);
}

TEST_CASE("a list manager's notice is the list's policy, never a hard bounce, whatever its words") {
    // Mailman marks its notices X-Mailman-Version; the words here are ones no rule knows.
    const std::string notice =
        "From: list-owner@lists.example.org\r\nTo: sender@example.net\r\nSubject: Viestisi listalle\r\n"
        "X-Mailman-Version: 3.3.8\r\nList-Id: <list.lists.example.org>\r\n\r\n"
        "Viestisi osoitteeseen <list@lists.example.org> ei mennyt perille: 550 tuntematon syy.\r\n";
    BounceReport r = parse_bounce_message(notice);
    CHECK(r.list_notice);
    auto v = verdicts(r);
    REQUIRE(v.size() == 1);
    CHECK(v[0].recipient->recipient == "list@lists.example.org");
    CHECK(v[0].bounce == Bounce::soft);
    CHECK(v[0].category == Category::policy_related);
    // Words a rule knows still decide: Mailman saying the list does not exist is an unknown address.
    const std::string unknown_list =
        "From: list-bounces@lists.example.org\r\nTo: sender@example.net\r\nSubject: Non-list\r\n"
        "X-Mailman-Version: 3.3.8\r\n\r\n"
        "The following address is not a known mailing list: nolist@lists.example.org\r\n";
    auto u = verdicts(parse_bounce_message(unknown_list));
    REQUIRE(u.size() == 1);
    CHECK(u[0].category == Category::bad_mailbox);
    // The same words from the mail system itself are no list notice.
    const std::string mta =
        "From: MAILER-DAEMON@mx.example.org\r\nTo: sender@example.net\r\nSubject: Undelivered Mail\r\n"
        "List-Id: <list.lists.example.org>\r\n\r\n"
        "Viestisi osoitteeseen <list@lists.example.org> ei mennyt perille: 550 tuntematon syy.\r\n";
    CHECK_FALSE(parse_bounce_message(mta).list_notice);
}

TEST_CASE("each MTA's own frame decides delay, expiry and failure when no rule knows the reason") {
    // The frames are the MTAs' own wording (Exim's delay warning and failure message, Sendmail's
    // savemail.c warning and expiry texts, Exchange's "Delivery is delayed to these recipients
    // or groups" and "Delivery has failed" NDRs, Gmail's "Delivery incomplete" and "Message not
    // delivered", qmail-send's permanent error); the reason inside each is words no rule knows.
    struct Want {
        const char* file;
        Status status;
        Category category;
    };
    const Want wants[] = {
        {"exim-delay.eml", Status::deferred, Category::message_expired},
        {"sendmail-delay.eml", Status::deferred, Category::message_expired},
        {"exchange-delay.eml", Status::deferred, Category::message_expired},
        {"gmail-delay.eml", Status::deferred, Category::message_expired},
        {"sendmail-expired.eml", Status::expired, Category::message_expired},
        {"exim-fail.eml", Status::bounce, Category::other},
        {"exchange-fail.eml", Status::bounce, Category::other},
        {"gmail-fail.eml", Status::bounce, Category::other},
        {"qmail-fail.eml", Status::bounce, Category::other},
    };
    for (const Want& w : wants) {
        INFO(w.file);
        BounceReport r = parse_bounce_message(fixture(std::string("conventions/") + w.file));
        REQUIRE(r.error.empty());
        auto v = verdicts(r);
        REQUIRE(v.size() == 1);
        CHECK(v[0].recipient->recipient == "a@example.com");
        CHECK(v[0].status == w.status);
        CHECK(v[0].category == w.category);
        // An unknown reason never proves the address gone.
        CHECK(v[0].bounce == Bounce::soft);
        CHECK(v[0].enhanced.cls == (w.status == Status::deferred ? 4 : 5));
    }
}

TEST_CASE("whole bounces from public sources: every recipient as the source shows it") {
    std::ifstream in(std::string(PREFLIGHT_TEST_DATA) + "/dsn/sourced/expected.tsv");
    REQUIRE(in.good());
    std::string line;
    int rows = 0, n = 0;
    while (std::getline(in, line)) {
        ++n;
        if (line.empty() || line[0] == '#') continue;
        std::vector<std::string> f;
        std::size_t pos = 0;
        for (std::size_t tab; (tab = line.find('\t', pos)) != std::string::npos; pos = tab + 1)
            f.push_back(line.substr(pos, tab - pos));
        f.push_back(line.substr(pos));
        INFO("expected.tsv:" << n << ": " << line);
        REQUIRE(f.size() == 6);
        BounceReport r = parse_bounce_message(fixture("sourced/" + f[0]));
        REQUIRE(r.error.empty());
        auto v = verdicts(r);
        const BounceVerdict* got = nullptr;
        for (const BounceVerdict& x : v)
            if (x.recipient->recipient == f[1]) got = &x;
        REQUIRE(got);
        CHECK(to_string(got->status) == f[2]);
        CHECK(to_string(got->bounce) == f[3]);
        const std::string cat(to_string(got->category));
        CHECK(("," + f[4] + ",").find("," + cat + ",") != std::string::npos);
        ++rows;
    }
    CHECK(rows == 15);
}

TEST_CASE("no Diagnostic-Code: the human part under either address, else the Status comment") {
    // Sun's and PMDF's DSNs name the final and the original recipient in the human-readable
    // part and put the reason under the second; some give it only as the Status comment.
    DsnFields f = parse_delivery_status(
        "Reporting-MTA: dns;mx.example.org\r\n\r\nAction: failed\r\nStatus: 5.0.0 (recipient reached disk quota)\r\n"
        "Original-recipient: rfc822;a@example.com\r\nFinal-recipient: rfc822;a@ms-daemon\r\n");
    REQUIRE(f.recipients.size() == 1);
    // A final address on a domain without a dot is the MTA's internal one: the original is reported.
    CHECK(f.recipients[0].recipient() == "a@example.com");
    CHECK(f.recipients[0].status == "5.0.0");
    CHECK(f.recipients[0].status_comment == "recipient reached disk quota");

    std::string msg =
        "From: postmaster@mx.example.org\r\nTo: sender@example.net\r\nSubject: Delivery failure\r\n"
        "MIME-Version: 1.0\r\nContent-Type: multipart/report; report-type=delivery-status; boundary=b\r\n\r\n"
        "--b\r\nContent-Type: text/plain\r\n\r\nYour message cannot be delivered to the following recipients:\r\n\r\n"
        "  Recipient address: b@mx.example.org\r\n  Original address: b@example.com\r\n  disk quota exceeded\r\n\r\n"
        "--b\r\nContent-Type: message/delivery-status\r\n\r\nReporting-MTA: dns;mx.example.org\r\n\r\n"
        "Action: failed\r\nStatus: 5.0.0\r\nOriginal-recipient: rfc822;b@example.com\r\nFinal-recipient: rfc822;b@mx.example.org\r\n\r\n"
        "Action: failed\r\nStatus: 5.0.0 (recipient reached disk quota)\r\nFinal-recipient: rfc822;c@example.com\r\n\r\n--b--\r\n";
    BounceReport r = parse_bounce_message(msg);
    REQUIRE(r.error.empty());
    auto v = verdicts(r);
    REQUIRE(v.size() == 2);
    CHECK(v[0].recipient->recipient == "b@mx.example.org");
    CHECK(v[0].category == Category::quota_issues);  // the reason under the original address
    CHECK(v[1].recipient->recipient == "c@example.com");
    CHECK(v[1].category == Category::quota_issues);  // the Status comment
    CHECK(v[1].bounce == Bounce::soft);
}

TEST_CASE("the bounce's header: last Subject, last Date, an mbox From line before it, encoded words") {
    // parse_bounce_message reads the top of the tree as a MIME part (GMime's message would parse
    // every address field first) and Subject and Date itself, as GMimeMessage reads them: the
    // last Subject; the last Date, unreadable or not. An mbox "From " line is taken by the
    // message parser only: such input is parsed as a message, with the same answers.
    const std::string dsn = fixture("postfix-dsn.eml");
    const std::string fields =
        "Subject: first\n"
        "Date: Mon, 1 Jan 2024 10:00:00 +0000\n"
        "Subject: =?UTF-8?Q?Unzustellbar=3A_=C3=A4?=\n"
        "Date: Tue, 2 Jan 2024 12:30:00 +0200\n";
    BounceReport r = parse_bounce_message(fields + dsn);
    REQUIRE(r.error.empty());
    CHECK(r.subject == "Undelivered Mail Returned to Sender");  // the fixture's, after these
    CHECK(r.has_date);
    CHECK(r.date == 1704191400);  // 2024-01-02 10:30 UTC
    CHECK(r.date_offset == 7200);
    CHECK(r.kind == ReportKind::dsn);

    BounceReport last = parse_bounce_message(dsn + "");
    CHECK_FALSE(last.has_date);  // the fixture has no Date
    BounceReport enc = parse_bounce_message("Subject: =?UTF-8?Q?Unzustellbar=3A_=C3=A4?=\nSubject: x\n" + dsn);
    CHECK(enc.subject == "Undelivered Mail Returned to Sender");
    BounceReport bad_date = parse_bounce_message(fields + "Date: not a date\n" + dsn);
    CHECK_FALSE(bad_date.has_date);  // the last Date decides, unreadable
    BounceReport only_enc =
        parse_bounce_message("Subject: =?UTF-8?Q?Unzustellbar=3A_=C3=A4?=\n" + dsn.substr(dsn.find("Auto-Submitted")));
    CHECK(only_enc.subject == "Unzustellbar: \xC3\xA4");

    BounceReport mbox = parse_bounce_message("From MAILER-DAEMON Mon Jan  1 10:00:00 2024\n" + fields + dsn);
    REQUIRE(mbox.error.empty());
    CHECK(mbox.subject == r.subject);
    CHECK(mbox.date == r.date);
    CHECK(mbox.kind == ReportKind::dsn);
    REQUIRE(mbox.recipients.size() == r.recipients.size());
    CHECK(mbox.recipients[0].recipient == "bob@example.com");
}

TEST_CASE("a report cut short is seen as cut wherever it ends, a whole one is not") {
    // parse_bounce_message parses without GMime's warning callback (which decodes every header
    // field) and again with it unless the tree shows the input was not cut: these cuts must all
    // still be seen, each in a place that takes another way to it.
    const std::string dsn = fixture("postfix-dsn.eml");
    const std::size_t block = dsn.find("Final-Recipient: rfc822; carol@example.com");
    REQUIRE(block != std::string::npos);
    // Inside the last recipient's block: the top multipart never sees its end boundary.
    BounceReport cut = parse_bounce_message(dsn.substr(0, block + 30));
    CHECK(cut.truncated);
    REQUIRE(cut.recipients.size() == 1);  // the cut block is dropped
    CHECK(cut.recipients[0].recipient == "bob@example.com");
    BounceReport whole = parse_bounce_message(dsn);
    CHECK_FALSE(whole.truncated);
    CHECK(whole.recipients.size() == 2);
    // The same report in a message/rfc822 part at the top, cut: no multipart around the cut.
    const std::string top_fields = "From: MAILER-DAEMON@example.org\nContent-Type: message/rfc822\n\n";
    BounceReport inner_cut = parse_bounce_message(top_fields + dsn.substr(0, block + 30));
    BounceReport inner = parse_bounce_message(top_fields + dsn);
    CHECK(inner_cut.recipients.size() + 1 == inner.recipients.size());
    // A single part whose header block never ends: cut in its header.
    BounceReport header_cut = parse_bounce_message("From: MAILER-DAEMON@example.org\nSubject: Undelivered");
    BounceReport header_whole = parse_bounce_message("From: MAILER-DAEMON@example.org\nSubject: Undelivered\n\n");
    CHECK(header_cut.truncated);
    CHECK_FALSE(header_whole.truncated);
}

namespace {
// A Postfix-style DSN returning msg (message/rfc822, its Content-Transfer-Encoding cte when set).
std::string dsn_returning(const std::string& msg, const std::string& cte = "") {
    return "From: MAILER-DAEMON@mx.example.org\nTo: sender@example.net\nSubject: Undelivered Mail\n"
           "MIME-Version: 1.0\nContent-Type: multipart/report; report-type=delivery-status; boundary=\"R\"\n\n"
           "--R\nContent-Type: text/plain\n\nThe mail system could not deliver it.\n\n"
           "--R\nContent-Type: message/delivery-status\n\nReporting-MTA: dns; mx.example.org\n\n"
           "Final-Recipient: rfc822; bob@example.com\nAction: failed\nStatus: 5.1.1\n"
           "Diagnostic-Code: smtp; 550 5.1.1 <bob@example.com>: Recipient address rejected: User unknown\n\n"
           "--R\nContent-Type: message/rfc822\n" +
           (cte.empty() ? "" : "Content-Transfer-Encoding: " + cte + "\n") + "\n" + msg + "\n--R--\n";
}
}  // namespace

TEST_CASE("the returned message: its header block is read, its body is not parsed") {
    // A returned newsletter of 60 parts: the limit counts the parts the bounce is read from.
    std::string body = "Content-Type: multipart/mixed; boundary=N\n\n";
    for (int i = 0; i < 60; ++i) body += "--N\nContent-Type: text/plain\n\nMessage-ID: <body-" + std::to_string(i) + "@x>\n";
    body += "--N--\n";
    const std::string header =
        "From: news@example.net\nTo: bob@example.com\nMessage-ID: <first@example.net>\n"
        "Message-ID: <last@example.net>\nSubject: offers\n";
    BounceLimits lim;
    lim.max_parts = 20;
    BounceReport r = parse_bounce_message(dsn_returning(header + "MIME-Version: 1.0\n" + body), lim);
    REQUIRE(r.error.empty());
    CHECK(r.message_id == "last@example.net");  // the last one, as a message parser reads it
    REQUIRE(r.recipients.size() == 1);
    CHECK(r.recipients[0].recipient == "bob@example.com");

    SECTION("the header block ends wherever a read ends") {
        // The blank line that ends the block before, across and after the 4096-byte reads.
        for (std::size_t pad = 4000; pad <= 4120; ++pad) {
            std::string padded = header + "X-Pad: " + std::string(pad - header.size(), 'p') + "\r\n";
            BounceReport p = parse_bounce_message(dsn_returning(padded + "\r\nMessage-ID: <in-body@x>\r\n"), lim);
            INFO("pad " << pad);
            CHECK(p.message_id == "last@example.net");
        }
    }
    SECTION("sent base64-encoded, it is not read (as GMime reads it: application/octet-stream)") {
        BounceReport b = parse_bounce_message(
            dsn_returning("TWVzc2FnZS1JRDogPGVuY29kZWRAZXhhbXBsZS5uZXQ+Cgpib2R5Cg==", "base64"));
        REQUIRE(b.error.empty());
        CHECK(b.message_id.empty());
    }
    SECTION("empty, or a header block without its end") {
        CHECK(parse_bounce_message(dsn_returning("")).message_id.empty());
        CHECK(parse_bounce_message(dsn_returning("Message-ID: <cut@example.net>")).message_id == "cut@example.net");
    }
}

TEST_CASE("a free-text bounce names no recipient: the returned message's To does") {
    const std::string bounce =
        "From: Mail Delivery System <MAILER-DAEMON@mx.example.org>\nTo: sender@example.net\n"
        "Subject: Mail delivery failed\nMIME-Version: 1.0\nContent-Type: multipart/mixed; boundary=\"F\"\n\n"
        "--F\nContent-Type: text/plain\n\nYour message could not be delivered: the mailbox is unavailable.\n\n"
        "--F\nContent-Type: message/rfc822\n\nFrom: sender@example.net\nTo: Carol <carol@example.com>\n"
        "Subject: hello\n\nCc: not-a-header@example.com\n--F--\n";
    BounceReport r = parse_bounce_message(bounce);
    REQUIRE(r.error.empty());
    REQUIRE(r.recipients.size() == 1);
    CHECK(r.recipients[0].recipient == "carol@example.com");
}
