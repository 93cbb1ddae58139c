#include <catch2/catch.hpp>

#include "reply_parser.hpp"

using preflight::EnhancedCode;
using preflight::parse_reply;
using preflight::ParsedReply;

namespace {

struct Expect {
    const char* raw;
    int code;
    const char* enhanced;  // "" when absent
    const char* text;
};

std::string enhanced_str(EnhancedCode e) {
    if (!e) return "";
    char buf[12];
    return std::string(buf, e.format(buf));
}

}  // namespace

TEST_CASE("reply parser splits code, enhanced code and text", "[parser]") {
    const Expect cases[] = {
        {"550 5.1.1 <bob@example.org>: Recipient address rejected: User unknown", 550, "5.1.1",
         "<bob@example.org>: Recipient address rejected: User unknown"},
        {"452 4.2.2 Mailbox full", 452, "4.2.2", "Mailbox full"},
        {"451 Please try again later", 451, "", "Please try again later"},
        // Gmail's multi-line reply joined by spaces: the repeated prefix is not text.
        {"550-5.1.1 The email account that you tried to reach does not exist. Please try 550-5.1.1 double-checking",
         550, "5.1.1", "The email account that you tried to reach does not exist. Please try double-checking"},
        // The same with real newlines and CRs.
        {"421-4.7.26 Your email has been rate limited\r\n421-4.7.26 because it is unauthenticated.\r\n421 4.7.26 Gmail requires",
         421, "4.7.26", "Your email has been rate limited because it is unauthenticated. Gmail requires"},
        {"552-Requested mail action aborted: exceeded storage allocation 552-Quota exceeded", 552, "",
         "Requested mail action aborted: exceeded storage allocation Quota exceeded"},
        {"Diagnostic-Code: smtp; 550 5.1.1 No such user", 550, "5.1.1", "No such user"},
        {"Diagnostic Code: smtp; 550 5.1.1. No such user", 550, "5.1.1", "No such user"},
        {"smtp;550 5.2.2 Over quota", 550, "5.2.2", "Over quota"},
        {"X-Postfix; Host or domain name not found", 0, "", "Host or domain name not found"},
        {"#550 5.1.1 RESOLVER.ADR.RecipNotFound; not found ##", 550, "5.1.1",
         "RESOLVER.ADR.RecipNotFound; not found ##"},
        {"5.1.1 Unknown user", 0, "5.1.1", "Unknown user"},
        {"Host not found (MX)", 0, "", "Host not found (MX)"},
        {"   \t550\t5.7.1   spaced    out  ", 550, "5.7.1", "spaced out"},
        // A code not followed by a separator is text, not a code.
        {"5500 things", 0, "", "5500 things"},
        {"550", 550, "", ""},
        // Enhanced code with more than three digits in a part is not an enhanced code.
        {"550 5.1.1234 odd", 550, "", "5.1.1234 odd"},
        // Microsoft's three-digit detail.
        {"550 5.7.708 Service unavailable. Access denied", 550, "5.7.708", "Service unavailable. Access denied"},
        // Postfix's own wording around the remote reply: codes found inside the text.
        {"host mx.example.org[192.0.2.1] said: 550 5.1.1 <a@example.org>: User unknown (in reply to RCPT TO command)",
         550, "5.1.1",
         "host mx.example.org[192.0.2.1] said: 550 5.1.1 <a@example.org>: User unknown (in reply to RCPT TO command)"},
        {"", 0, "", ""},
        // A non-SMTP diagnostic type: "255" is an exit status, not a reply code.
        {"Diagnostic-Code: X-Unix; 255", 0, "", "255"},
        // A greeting in front of the real failure: the failure's codes win.
        {"220-laposte 421 4.2.1 Service refuse", 421, "4.2.1", "laposte 421 4.2.1 Service refuse"},
    };
    std::string scratch;
    for (const auto& c : cases) {
        ParsedReply p;
        parse_reply(c.raw, scratch, p);
        INFO("raw: " << c.raw);
        CHECK(p.code == c.code);
        CHECK(enhanced_str(p.enhanced) == c.enhanced);
        CHECK(std::string(p.text) == c.text);
    }
}

TEST_CASE("reply class falls back from basic to enhanced code", "[parser]") {
    std::string scratch;
    ParsedReply p;
    parse_reply("4.2.2 mailbox full", scratch, p);
    CHECK(p.reply_class() == 4);
    parse_reply("250 ok", scratch, p);
    CHECK(p.reply_class() == 2);
    parse_reply("no code here", scratch, p);
    CHECK(p.reply_class() == 0);
}

TEST_CASE("enhanced codes parse exactly", "[parser]") {
    EnhancedCode e;
    CHECK(preflight::parse_enhanced_code("5.7.26", e));
    CHECK(e == EnhancedCode{5, 7, 26});
    CHECK_FALSE(preflight::parse_enhanced_code("6.1.1", e));
    CHECK_FALSE(preflight::parse_enhanced_code("5.1", e));
    CHECK_FALSE(preflight::parse_enhanced_code("5.1.1x", e));
    CHECK_FALSE(preflight::parse_enhanced_code("5.1000.1", e));
}
