// Envelope syntax: tables of addresses, good and bad, including hostile input.
#include <catch2/catch.hpp>

#include <string>

#include "envelope_check.hpp"
#include "reply_table.hpp"

using namespace preflight;

// Every refusal ends with the line naming who refused (reply_table.hpp), joined by reply_text().
static std::string marked() { return " " + std::string(refusal_marker); }

namespace {

// Concatenation by append: GCC 12 at -O3 warns (-Wrestrict, a false positive) on "lit" + string.
template <typename... P>
std::string cat(const P&... parts) {
    std::string out;
    (out.append(std::string_view(parts)), ...);
    return out;
}

constexpr auto S = AddressRole::sender;
constexpr auto R = AddressRole::recipient;

struct Good {
    std::string in;
    AddressRole role;
    bool smtputf8;
    std::string local;
    std::string domain;
};

struct Bad {
    std::string in;
    AddressRole role;
    bool smtputf8;
    ReplyId reply;
    std::string reason;  // substring of args.reason
};

}  // namespace

TEST_CASE("envelope: good addresses and their normal form", "[checks][envelope]") {
    const Good rows[] = {
        {"<user@example.org>", S, false, "user", "example.org"},
        {"user@example.org", S, false, "user", "example.org"},  // bare form, as Postfix tolerates
        {"  <user@example.org>  ", R, false, "user", "example.org"},
        {"<User.Name+tag@Example.ORG>", R, false, "User.Name+tag", "example.org"},  // local case kept
        {"<user@example.org.>", S, false, "user", "example.org"},                   // trailing dot
        {"<!#$%&'*+-/=?^_`{|}~@example.org>", R, false, "!#$%&'*+-/=?^_`{|}~", "example.org"},
        {"<\"john.doe\"@example.org>", R, false, "john.doe", "example.org"},  // needless quotes dropped
        {"<\"john doe\"@example.org>", R, false, "\"john doe\"", "example.org"},
        {"<\"a..b\"@example.org>", R, false, "\"a..b\"", "example.org"},
        {"<\"a\\\"b\\\\c\"@example.org>", R, false, "\"a\\\"b\\\\c\"", "example.org"},
        {"<\"\\a\"@example.org>", R, false, "a", "example.org"},  // quoted-pair of a plain char
        {"<\"\"@example.org>", R, false, "\"\"", "example.org"},
        {"<@relay.example,@[192.0.2.1]:user@example.org>", R, false, "user", "example.org"},  // source route
        {"<user@xn--bcher-kva.example>", S, false, "user", "xn--bcher-kva.example"},
        {"<user@XN--BCHER-KVA.Example>", S, false, "user", "xn--bcher-kva.example"},
        {"<user@b\xc3\xbc"
         "cher.example>",
         S, true, "user", "xn--bcher-kva.example"},  // U-label, SMTPUTF8
        {"<user@\xe6\x97\xa5\xe6\x9c\xac\xe8\xaa\x9e.jp>", S, true, "user", "xn--wgv71a119e.jp"},
        {"<j\xc3\xb6rg@example.org>", S, true, "j\xc3\xb6rg", "example.org"},
        {"<user@[192.0.2.1]>", S, false, "user", "[192.0.2.1]"},
        {"<user@[IPv6:2001:DB8:0:0:0:0:0:1]>", S, false, "user", "[IPv6:2001:db8::1]"},
        {"<user@[ipv6:::ffff:192.0.2.1]>", S, false, "user", "[IPv6:::ffff:192.0.2.1]"},
        {"<user@localhost>", R, false, "user", "localhost"},  // single label: syntax fine, DNS decides
        {"<user@123.example>", R, false, "user", "123.example"},
        {"<user@a-b.c--d.example>", R, false, "user", "a-b.c--d.example"},
        {"<Postmaster>", R, false, "Postmaster", ""},  // RFC 5321 4.5.1
        {cat("<", std::string(64, 'l'), "@example.org>"), R, false, std::string(64, 'l'), "example.org"},
        {cat("<u@", std::string(63, 'a'), ".example>"), R, false, "u", cat(std::string(63, 'a'), ".example")},
    };
    for (const Good& g : rows) {
        INFO(g.in);
        EnvelopeResult r = check_envelope_address(g.in, g.role, g.smtputf8);
        INFO(r.verdict.args.reason);
        REQUIRE(r.verdict.action == Verdict::Action::accept);
        REQUIRE(r.mailbox);
        CHECK_FALSE(r.mailbox->null_path);
        CHECK(r.mailbox->local_part == g.local);
        CHECK(r.mailbox->domain == g.domain);
        CHECK(r.mailbox->address_literal == (!g.domain.empty() && g.domain.front() == '['));
    }
}

TEST_CASE("envelope: a 255-octet domain is the maximum", "[checks][envelope]") {
    const std::string l63(63, 'a');
    const std::string dom = cat(l63, ".", l63, ".", l63, ".", l63);
    REQUIRE(dom.size() == 255);
    auto r = check_envelope_address(cat("<u@", dom, ">"), S, false);
    CHECK(r.verdict.action == Verdict::Action::accept);
    auto bad = check_envelope_address(cat("<u@b.", dom, ">"), S, false);
    CHECK(bad.verdict.action == Verdict::Action::reject);
    CHECK(bad.verdict.args.reason == "domain longer than 255 octets");
}

TEST_CASE("envelope: the null path", "[checks][envelope]") {
    for (const char* in : {"<>", "", " <> "}) {
        auto s = check_envelope_address(in, S, false);
        REQUIRE(s.verdict.action == Verdict::Action::accept);
        REQUIRE(s.mailbox);
        CHECK(s.mailbox->null_path);
        CHECK(s.mailbox->address().empty());
        auto r = check_envelope_address(in, R, false);
        CHECK(r.verdict.action == Verdict::Action::reject);
        CHECK(r.verdict.reply == ReplyId::recipient_syntax);
        CHECK(r.verdict.args.reason == "the null address <> is only valid as a sender");
        CHECK_FALSE(r.mailbox);
    }
}

TEST_CASE("envelope: bad addresses name the bad part", "[checks][envelope]") {
    const auto SX = ReplyId::sender_syntax;
    const auto RX = ReplyId::recipient_syntax;
    const auto U8 = ReplyId::address_needs_smtputf8;
    const Bad rows[] = {
        {"<user@example.org", S, false, SX, "missing closing '>'"},
        {"user@example.org>", S, false, SX, "missing opening '<'"},
        {"<user>", S, false, SX, "no @domain part"},
        {"<postmaster>", S, false, SX, "no @domain part"},  // only RCPT TO may omit the domain
        {"<@example.org>", R, false, RX, "empty local part"},
        {"<user@>", R, false, RX, "empty domain"},
        {"<.user@example.org>", R, false, RX, "local part starts with a dot"},
        {"<user.@example.org>", R, false, RX, "local part ends with a dot"},
        {"<a..b@example.org>", R, false, RX, "two dots in a row in local part"},
        {"<john doe@example.org>", R, false, RX, "invalid character ' ' (space) in local part"},
        {"<a(b)@example.org>", R, false, RX, "invalid character '(' in local part"},
        {"<a\x01@example.org>", R, false, RX, "invalid character 0x01 in local part"},
        {"<\"abc@example.org>", R, false, RX, "quoted local part without closing '\"'"},
        {"<\"a\"b@example.org>", R, false, RX, "invalid character 'b' after the quoted local part"},
        {"<\"a\x01\"@example.org>", R, false, RX, "invalid character 0x01 in quoted local part"},
        {"<\"a\\\x01\"@example.org>", R, false, RX, "after backslash"},
        {cat("<", std::string(65, 'l'), "@example.org>"), R, false, RX, "local part longer than 64 octets"},
        {cat("<\"", std::string(63, 'l'), "\"@example.org>"), R, false, RX, "local part longer than 64 octets"},
        {"<user@a-.example>", S, false, SX, "label 'a-' ends with a hyphen"},
        {"<user@-a.example>", S, false, SX, "label '-a' starts with a hyphen"},
        {"<user@a..example>", S, false, SX, "empty label"},
        {"<user@.example>", S, false, SX, "empty label"},
        {"<user@example..>", S, false, SX, "empty label"},
        {"<user@exa_mple.org>", S, false, SX, "invalid character '_' in label 'exa_mple'"},
        {"<user@exa mple.org>", S, false, SX, "invalid character ' ' (space) in label"},
        {"<user@example.org@other.org>", S, false, SX, "invalid character '@' in label"},
        {cat("<user@", std::string(64, 'a'), ".example>"), S, false, SX, "is longer than 63 octets"},
        {"<user@192.0.2.1>", S, false, SX, "top-level label '1' is all digits"},
        {"<user@[192.0.2.256]>", S, false, SX, "bad IPv4 address literal"},
        {"<user@[192.0.2]>", S, false, SX, "bad IPv4 address literal"},
        {"<user@[1.2.3.4.5]>", S, false, SX, "bad IPv4 address literal"},
        {"<user@[0001.2.3.4]>", S, false, SX, "bad IPv4 address literal"},
        {"<user@[IPv6:2001:db8::g]>", S, false, SX, "bad IPv6 address literal"},
        {"<user@[IPv6:fe80::1%eth0]>", S, false, SX, "bad IPv6 address literal"},
        {"<user@[x400:foo]>", S, false, SX, "unknown address literal tag 'x400'"},
        {"<user@[192.0.2.1>", S, false, SX, "without closing ']'"},
        {"<@relay.example user@example.org>", R, false, RX, "bad source route"},
        {"<@-bad.example:user@example.org>", R, false, RX, "bad source route: label '-bad' starts with a hyphen"},
        {"<@:user@example.org>", R, false, RX, "bad source route: empty domain"},
        // UTF-8: without SMTPUTF8 a 553 5.6.7, malformed always a syntax error.
        {"<j\xc3\xb6rg@example.org>", S, false, U8, "non-ASCII"},
        {"<user@b\xc3\xbc"
         "cher.example>",
         R, false, U8, "non-ASCII"},
        {"<j\xc3@example.org>", S, true, SX, "invalid UTF-8 in local part"},
        {"<j\xc0\xafrg@example.org>", S, true, SX, "invalid UTF-8 in local part"},    // overlong '/'
        {"<j\xed\xa0\x80@example.org>", S, true, SX, "invalid UTF-8 in local part"},  // surrogate
        {"<user@b\xff"
         "cher.example>",
         S, true, SX, "invalid UTF-8 in label"},
        {"<user@b\xf4\x90\x80\x80.example>", S, true, SX, "invalid UTF-8 in label"},  // > U+10FFFF
        {cat("<user@", std::string(300, 'a'), ".example>"), S, false, SX, "domain longer than 255 octets"},
        {cat("<user@", std::string(1 << 20, 'a'), ">"), S, false, SX, "address longer than 1024 octets"},
        {std::string(1 << 20, '<'), S, false, SX, "address longer than 1024 octets"},
    };
    for (const Bad& b : rows) {
        INFO(b.in.substr(0, 200));
        EnvelopeResult r = check_envelope_address(b.in, b.role, b.smtputf8);
        CHECK(r.verdict.action == Verdict::Action::reject);
        CHECK(r.verdict.reply == b.reply);
        CHECK(r.verdict.check == "envelope");
        CHECK_FALSE(r.mailbox);
        CHECK(r.verdict.args.reason.find(b.reason) != std::string::npos);
        CHECK(r.verdict.args.reason.size() < 200);    // reasons stay short for any input
        CHECK(r.verdict.args.address.size() <= 300);  // and so does the echoed address
        CHECK(missing_args(r.verdict).empty());
        SmtpReply rep = render(r.verdict);
        CHECK(rep.code / 100 == 5);
    }
}

TEST_CASE("envelope: rendered reply names the part", "[checks][envelope]") {
    auto r = check_envelope_address("<user@a-.example>", S, false);
    CHECK(reply_text(render(r.verdict)) ==
          "501 5.1.7 Bad sender address <user@a-.example>: label 'a-' ends with a hyphen; "
          "fix the envelope sender (MAIL FROM) of this message" +
              marked());
    r = check_envelope_address("<a b@example.org>", R, false);
    CHECK(reply_text(render(r.verdict)).rfind("501 5.1.3 Bad recipient address <a b@example.org>: ", 0) == 0);
    r = check_envelope_address("<j\xc3\xb6rg@example.org>", S, false);
    CHECK(reply_text(render(r.verdict)).rfind("553 5.6.7 Address <j??rg@example.org> contains non-ASCII", 0) == 0);
}

TEST_CASE("envelope: UTF-8 mailbox keeps both forms of the domain", "[checks][envelope]") {
    auto r = check_envelope_address(
        "<J\xc3\xb6rg@B\xc3\xbc"
        "cher.Example.>",
        S, true);
    REQUIRE(r.mailbox);
    CHECK(r.mailbox->utf8);
    CHECK(r.mailbox->domain == "xn--bcher-kva.example");
    CHECK(r.mailbox->utf8_domain ==
          "b\xc3\xbc"
          "cher.example");
    CHECK(r.mailbox->address() == "J\xc3\xb6rg@xn--bcher-kva.example");
}

TEST_CASE("normalise_domain and punycode", "[checks][envelope]") {
    std::string why;
    CHECK(normalise_domain("Example.ORG.", false, &why) == "example.org");
    CHECK_FALSE(
        normalise_domain("b\xc3\xbc"
                         "cher.example",
                         false, &why));
    CHECK(why == "non-ASCII characters in the domain");
    CHECK(normalise_domain("b\xc3\xbc"
                           "cher.example",
                           true, &why) == "xn--bcher-kva.example");
    CHECK_FALSE(normalise_domain("a-.example", true, &why));
    CHECK(why == "label 'a-' ends with a hyphen");

    CHECK(punycode_encode("b\xc3\xbc"
                          "cher") == "bcher-kva");
    CHECK(punycode_encode("m\xc3\xbcnchen") == "mnchen-3ya");
    CHECK(punycode_encode("\xc3\xbc") == "tda");
    CHECK(punycode_encode("a-\xc3\xbc-b") == "a--b-1ra");
    // RFC 3492 7.1 (B): Chinese (simplified).
    CHECK(punycode_encode("\xe4\xbb\x96\xe4\xbb\xac\xe4\xb8\xba\xe4\xbb\x80\xe4\xb9\x88\xe4\xb8\x8d\xe8\xaf\xb4"
                          "\xe4\xb8\xad\xe6\x96\x87") == "ihqwcrb4cv8a8dqg056pqjye");
    CHECK_FALSE(punycode_encode("\xff"));
    // CJK code points U+4E00 + 37*i (3 UTF-8 octets each): spread out, so Punycode cannot
    // compress them as it compresses runs of neighbours.
    auto cjk = [](int n) {
        std::string s;
        for (int i = 0; i < n; ++i) {
            unsigned cp = 0x4e00 + 37 * i;
            s += static_cast<char>(0xe0 | (cp >> 12));
            s += static_cast<char>(0x80 | ((cp >> 6) & 0x3f));
            s += static_cast<char>(0x80 | (cp & 0x3f));
        }
        return s;
    };
    CHECK(punycode_encode(cjk(20)) == "4gq6c1e7f9goiqjqkolwmrnyoqpwq2r8svt0u5vex");  // as Python's codec
    // A U-label whose xn-- form is over 63 octets.
    std::string long_label = cjk(30);
    CHECK_FALSE(normalise_domain(cat(long_label, ".jp"), true, &why));
    CHECK(why.find("longer than 63 octets in its xn-- form") != std::string::npos);
}
