// The message checks at end of message (checks/message/): RFC 5322 header sanity, the DMARC
// record, From alignment and one-click unsubscribe, as plain functions over a fake resolver.
#include <catch2/catch.hpp>

#include "alignment.hpp"
#include "dmarc.hpp"
#include "fake_resolver.hpp"
#include "header_sanity.hpp"
#include "message_headers.hpp"
#include "reply_table.hpp"
#include "unsubscribe_check.hpp"

using namespace preflight;

namespace {

std::string reply_of(const Verdict& v) { return reply_text(render(v)); }

MessageHeaders good_headers() {
    MessageHeaders h;
    h.add("From", " Acme News <news@acme.example>");
    h.add("To", " reader@example.net");
    h.add("Subject", " Our December offers");
    h.add("Date", " Mon, 07 Dec 2026 10:00:00 +0000");
    h.add("Message-ID", " <20261207.1@acme.example>");
    return h;
}

}  // namespace

TEST_CASE("mailbox lists: display names, comments, quoted strings, and what is not an address", "[message]") {
    CHECK(parse_mailbox_list("a@Example.ORG").domains == std::vector<std::string>{"example.org"});
    CHECK(parse_mailbox_list(" \"Doe, John\" (work) <john@x.example>").domains ==
          std::vector<std::string>{"x.example"});
    CHECK(parse_mailbox_list("=?utf-8?q?J=C3=B6rg?= <j@a.example>, b@b.example").domains ==
          std::vector<std::string>{"a.example", "b.example"});
    CHECK(parse_mailbox_list("\"quoted local\"@q.example").domains == std::vector<std::string>{"q.example"});
    CHECK(parse_mailbox_list("Name <user@example.org").error == "an address in '<' is not closed by '>' at its end");
    CHECK(parse_mailbox_list("user at example.org").error == "an address has no '@'");
    CHECK(parse_mailbox_list("user@").error == "an address has no domain after '@'");
    CHECK(parse_mailbox_list("user@localhost").error.find("not a full domain name") != std::string::npos);
    CHECK(parse_mailbox_list("undisclosed-recipients:;").error.find("group") != std::string::npos);
    // obs-phrase (RFC 5322 4.1) allows an unquoted '.' in a display name, and receivers take it.
    CHECK(parse_mailbox_list("John Q. Public <a@b.example>").domains == std::vector<std::string>{"b.example"});
    CHECK(parse_mailbox_list("Doe, John <j@x.example>").error == "an address has no '@'");
    CHECK(parse_mailbox_list("Joe <joe@example.org> (comment").error == "a comment '(' is not closed");
    CHECK(parse_mailbox_list("").error == "it names no address");
}

TEST_CASE("Date and Message-ID syntax", "[message]") {
    CHECK(valid_date_time("Mon, 07 Dec 2026 10:00:00 +0000"));
    CHECK(valid_date_time("7 Dec 2026 10:00 -0500 (EST)"));
    CHECK(valid_date_time("Tue, 1 Jul 2003 10:52:37 GMT"));
    CHECK_FALSE(valid_date_time("2026-12-07T10:00:00Z"));
    CHECK_FALSE(valid_date_time("Mon, 07 Dec 2026 25:00:00 +0000"));
    CHECK_FALSE(valid_date_time("yesterday"));
    CHECK(valid_msg_id("<20261207.1@acme.example>"));
    CHECK(valid_msg_id(" <a.b@[192.0.2.1]> "));
    CHECK_FALSE(valid_msg_id("20261207.1@acme.example"));
    CHECK_FALSE(valid_msg_id("<no-at-sign>"));
    CHECK_FALSE(valid_msg_id("<a b@c>"));
}

TEST_CASE("header sanity: one From, Date, Message-ID and no duplicated singletons", "[message]") {
    CHECK(check_header_sanity(good_headers()).action == Verdict::Action::accept);

    MessageHeaders two_from = good_headers();
    two_from.add("From", " other@acme.example");
    Verdict v = check_header_sanity(two_from);
    CHECK(v.action == Verdict::Action::reject);
    CHECK(v.check == "headers");
    CHECK(
        reply_of(v).starts_with("550 5.6.0 The message headers are not valid (RFC 5322): 2 From headers "
                                "(exactly one allowed); receivers such as Gmail refuse such messages; fix"));

    MessageHeaders no_date;
    no_date.add("From", " a@acme.example");
    no_date.add("Message-ID", " <1@acme.example>");
    CHECK(check_header_sanity(no_date).args.problem == "no Date header");

    MessageHeaders several;
    several.add("From", " a@acme.example, b@acme.example");
    several.add("Date", " 7 Dec 2026 10:00 +0000");
    several.add("Message-ID", " <1@acme.example>");
    several.add("Subject", "a");
    several.add("subject", "b");
    CHECK(check_header_sanity(several).args.problem ==
          "From names 2 mailboxes but there is no Sender header; 2 Subject headers (at most one allowed)");
    several.add("Sender", " a@acme.example");
    CHECK(check_header_sanity(several).args.problem == "2 Subject headers (at most one allowed)");

    MessageHeaders bad_from = good_headers();
    bad_from = MessageHeaders();
    bad_from.add("From", " Acme <news@acme.example");
    bad_from.add("Date", " nonsense");
    bad_from.add("Message-ID", " <1@acme.example>");
    CHECK(check_header_sanity(bad_from).args.problem ==
          "the From address cannot be parsed (an address in '<' is not closed by '>' at its end); the Date header "
          "is not an RFC 5322 date (e.g. Mon, 07 Dec 2026 10:00:00 +0000)");
}

TEST_CASE("header storage stays bounded: 10,000 To lines, a 1 MiB Subject", "[message][hostile]") {
    MessageHeaders h = good_headers();
    for (int i = 0; i < 10000; ++i) h.add("To", "x@y.example");
    h.add("Subject", std::string(1 << 20, 'a'));
    CHECK(h.count(Field::to) == 10001);
    CHECK(h.values(Field::to).size() == MessageHeaders::kept_per_field);
    for (const std::string& s : h.values(Field::subject)) CHECK(s.size() <= MessageHeaders::max_value);
    CHECK(check_header_sanity(h).args.problem ==
          "10001 To headers (at most one allowed); 2 Subject headers (at most "
          "one allowed)");
}

TEST_CASE("organisational domains come from the Public Suffix List", "[message][dmarc]") {
    CHECK(organizational_domain("mail.example.co.uk") == "example.co.uk");
    CHECK(organizational_domain("a.b.Example.COM.") == "example.com");
    CHECK(organizational_domain("news.acme.test") == "acme.test");
    CHECK(organizational_domain("co.uk") == "co.uk");  // a public suffix is its own
    CHECK(domains_aligned("news.acme.test", "acme.test", false));
    CHECK_FALSE(domains_aligned("news.acme.test", "acme.test", true));
    CHECK_FALSE(domains_aligned("a.example.co.uk", "b.co.uk", false));
    CHECK(domains_aligned("a.example.co.uk", "example.co.uk", false));
}

TEST_CASE("DMARC record syntax", "[message][dmarc]") {
    DmarcParse p = parse_dmarc_record("v=DMARC1; p=reject; adkim=s; rua=mailto:d@example.org");
    CHECK(p.error.empty());
    CHECK(p.record.policy == "reject");
    CHECK(p.record.strict_dkim);
    CHECK_FALSE(p.record.strict_spf);
    CHECK(parse_dmarc_record("v=DMARC1;p=none;").error.empty());
    CHECK(parse_dmarc_record("v=DMARC1; rua=mailto:d@example.org").error ==
          "no p= tag (p=none, p=quarantine or p=reject)");
    CHECK(parse_dmarc_record("v=DMARC1; p=block").error == "p=block is not none, quarantine or reject");
    CHECK(parse_dmarc_record("v=DMARC1; p=none; aspf=x").error == "aspf=x is not r or s");
    CHECK(parse_dmarc_record("v=DMARC1; p=none; pct=101").error == "pct=101 is not a percentage 0..100");
    CHECK(parse_dmarc_record("p=none; v=DMARC1").error == "v=DMARC1 must be the first tag");
    CHECK(parse_dmarc_record("v=dmarc1; p=none").error == "v=dmarc1 is not v=DMARC1");
    CHECK(parse_dmarc_record("v=DMARC1; p").error == "\"p\" is not a tag=value pair");
}

TEST_CASE("DMARC discovery: the From domain, then its organisational domain", "[message][dmarc]") {
    FakeResolver dns;
    dns.set("_dmarc.acme.test", rrtype::TXT, DnsStatus::ok, {"v=DMARC1; p=reject"});
    dns.set("_dmarc.sub.strict.test", rrtype::TXT, DnsStatus::ok, {"v=DMARC1; p=none; adkim=s; aspf=s"});
    dns.set("_dmarc.other.test", rrtype::TXT, DnsStatus::ok, {"google-site-verification=x"});
    dns.set("_dmarc.two.test", rrtype::TXT, DnsStatus::ok, {"v=DMARC1; p=none", "v=DMARC1; p=reject"});
    dns.set("_dmarc.bad.test", rrtype::TXT, DnsStatus::ok, {"v=DMARC1; p=block"});
    dns.set("_dmarc.servfail.test", rrtype::TXT, DnsStatus::servfail);

    DmarcLookup l = lookup_dmarc(dns, "news.acme.test");
    CHECK(l.status == DmarcLookup::Status::found);
    CHECK(l.name == "_dmarc.acme.test");
    CHECK(l.record.policy == "reject");
    CHECK(lookup_dmarc(dns, "sub.strict.test").record.strict_dkim);
    CHECK(check_dmarc_record(l, DnsErrorAction::tempfail).action == Verdict::Action::accept);

    l = lookup_dmarc(dns, "news.other.test");
    CHECK(l.status == DmarcLookup::Status::missing);
    Verdict v = check_dmarc_record(l, DnsErrorAction::tempfail);
    CHECK(v.check == "dmarc");
    CHECK(reply_of(v) ==
          "550 5.7.26 The From domain news.other.test publishes no DMARC record (none at _dmarc.news.other.test or "
          "_dmarc.other.test); Gmail, Yahoo and Microsoft refuse bulk mail without one; publish one at the "
          "organisational domain, e.g. _dmarc.other.test TXT \"v=DMARC1; p=none; "
          "rua=mailto:dmarc-reports@other.test\" " +
              std::string(refusal_marker));

    v = check_dmarc_record(lookup_dmarc(dns, "bad.test"), DnsErrorAction::tempfail);
    CHECK(
        reply_of(v).starts_with("550 5.7.26 The DMARC record at _dmarc.bad.test is not valid (p=block is not none, "
                                "quarantine or reject), so receivers treat bad.test as having none; correct it"));
    CHECK(lookup_dmarc(dns, "two.test").error == "more than one DMARC record; receivers then apply none");

    v = check_dmarc_record(lookup_dmarc(dns, "servfail.test"), DnsErrorAction::tempfail);
    CHECK(reply_of(v).starts_with("451 4.4.3 DNS lookup of _dmarc.servfail.test/TXT failed temporarily (SERVFAIL)"));
    v = check_dmarc_record(lookup_dmarc(dns, "servfail.test"), DnsErrorAction::accept);
    CHECK(v.action == Verdict::Action::accept);
    CHECK(v.reply == ReplyId::dns_temp_failure);  // kept for the log
    // A subdomain with trouble at its own name is not looked up further: a retry may find it.
    dns.set("_dmarc.a.servfail.test", rrtype::TXT, DnsStatus::timeout);
    dns.queries = 0;
    CHECK(lookup_dmarc(dns, "a.servfail.test").status == DmarcLookup::Status::dns_error);
    CHECK(dns.queries == 1);
}

TEST_CASE("alignment: a verified aligned DKIM d=, our published key, or SPF for an aligned envelope domain",
          "[message][alignment]") {
    AlignmentInputs in;
    in.from_domain = "acme.test";
    in.envelope_domain = "bounces.esp.test";
    SpfOutcome spf_pass{SpfResult::pass, "", {}};
    in.spf = &spf_pass;

    Verdict v = check_alignment(in);
    CHECK(v.action == Verdict::Action::reject);
    CHECK(reply_of(v).starts_with(
        "550 5.7.26 The From domain acme.test is aligned (relaxed, per its DMARC record) neither with the envelope "
        "sender domain bounces.esp.test (SPF not aligned) nor with a verified DKIM signature, so DMARC fails at the "
        "receiver; send with an envelope sender at acme.test whose SPF allows this relay, or sign with d=acme.test"));

    in.signatures = {{"esp.test", "s1", true, {"from"}}, {"news.acme.test", "s2", false, {"from"}}};
    CHECK(check_alignment(in).args.signers == "esp.test, news.acme.test (does not verify)");
    in.signatures[1].verified = true;
    CHECK(check_alignment(in).action == Verdict::Action::accept);  // relaxed: same organisational domain
    in.record.strict_dkim = true;
    v = check_alignment(in);
    CHECK(v.action == Verdict::Action::reject);
    CHECK(v.args.alignment == "adkim=s, aspf=r");

    in.signatures.clear();
    in.envelope_domain = "mail.acme.test";
    CHECK(check_alignment(in).action == Verdict::Action::accept);  // SPF passes, relaxed aspf
    in.record.strict_spf = true;
    v = check_alignment(in);
    CHECK(v.action == Verdict::Action::reject);
    CHECK(v.args.alignment == "strict");
    CHECK(v.args.spf_result == "not aligned");

    in.record = {};
    SpfOutcome spf_fail{SpfResult::fail, "", {}};
    in.spf = &spf_fail;
    CHECK(check_alignment(in).args.spf_result == "fail");
    SpfOutcome spf_temp{SpfResult::temperror, "SERVFAIL", {}};
    in.spf = &spf_temp;
    CHECK(reply_of(check_alignment(in)).starts_with("451 4.4.3 "));

    // The relay's key published under the From domain: the signer further down signs aligned.
    in.spf = &spf_fail;
    DkimOutcome published{DkimResult::key_published, "pf1", ""};
    in.published = &published;
    in.published_domain = "acme.test";
    CHECK(check_alignment(in).action == Verdict::Action::accept);
    DkimOutcome not_published{DkimResult::none, "", ""};
    in.published = &not_published;
    in.selector = "pf1";
    CHECK(reply_of(check_alignment(in)).find("(publish this relay's DKIM key at pf1._domainkey.acme.test)") !=
          std::string::npos);
}

TEST_CASE("one-click unsubscribe for bulk mail (RFC 8058)", "[message][unsubscribe]") {
    MessageHeaders h = good_headers();
    CHECK(check_one_click_unsubscribe(h, false, {}).action == Verdict::Action::accept);  // not bulk

    Verdict v = check_one_click_unsubscribe(h, true, {});
    CHECK(reply_of(v).starts_with(
        "550 5.7.1 Bulk mail (Bulk yes for its sender domain) must offer one-click unsubscribe (RFC 8058), which "
        "Gmail, Yahoo and Microsoft require, but it has no List-Unsubscribe header; add List-Unsubscribe: "
        "<https://...> with an https URI and List-Unsubscribe-Post: List-Unsubscribe=One-Click"));

    h.add("Precedence", " Bulk");
    h.add("List-Unsubscribe", " <mailto:unsub@acme.example>, <http://acme.example/u>");
    v = check_one_click_unsubscribe(h, false, {});
    CHECK(v.args.reason == "Precedence: bulk");
    CHECK(v.args.problem == "its List-Unsubscribe header has no https URI");

    MessageHeaders list = good_headers();
    list.add("List-Id", " <news.acme.example>");
    list.add("List-Unsubscribe", " <mailto:u@acme.example>, <https://acme.example/u?id=1>");
    CHECK(check_one_click_unsubscribe(list, false, {}).args.problem == "it has no List-Unsubscribe-Post header");
    MessageHeaders wrong = list;
    wrong.add("List-Unsubscribe-Post", " List-Unsubscribe=Yes");
    CHECK(check_one_click_unsubscribe(wrong, false, {}).args.problem ==
          "its List-Unsubscribe-Post header is not exactly List-Unsubscribe=One-Click");
    list.add("List-Unsubscribe-Post", " List-Unsubscribe=One-Click");
    CHECK(check_one_click_unsubscribe(list, false, {}).action == Verdict::Action::accept);  // unsigned: fine

    std::vector<DkimSignatureInfo> sigs{{"acme.example", "s1", true, {"from", "to", "list-unsubscribe"}}};
    v = check_one_click_unsubscribe(list, false, sigs);
    CHECK(reply_of(v).starts_with(
        "550 5.7.1 Bulk mail must have its one-click unsubscribe headers DKIM-signed (RFC 8058), but the DKIM "
        "signature of acme.example does not cover List-Unsubscribe-Post; add List-Unsubscribe-Post to the signed "
        "headers (h=) of the signature"));
    sigs.push_back({"esp.example", "s2", true, {"from", "list-unsubscribe", "list-unsubscribe-post"}});
    CHECK(check_one_click_unsubscribe(list, false, sigs).action == Verdict::Action::accept);
}
