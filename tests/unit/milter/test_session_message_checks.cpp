// The message checks inside MessageSession (end of message), and --test-message over the same
// session: modes, dry-run, tag headers, the order of checks, with a fake resolver.
#include <catch2/catch.hpp>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "dns_cache.hpp"
#include "fake_resolver.hpp"
#include "message_session.hpp"
#include "milter_metrics.hpp"
#include "test_message.hpp"

using namespace preflight;

namespace {

// The relay's DKIM public key (DkimPublicKey): a 1024-bit RSA key, base64 of its DER form.
const std::string kRelayPublicKey =
    "MIGfMA0GCSqGSIb3DQEBAQUAA4GNADCBiQKBgQCdR0DpN8+/E3Tg/spPPCySVT1E"
    "tvtrWsZkSqEklyzkIqYbhsqX+tePGIsUzsAkyh2AfkdBVvqIUyBc6q8mP9IWPVGe"
    "RprugMKhV4OTlhKxizAWt9iBB7xoT5PKgH+2ZfSVRQsqqjLERJUzJQPsH/lOulwr"
    "gkasgJ+Fxlkkx2Wh6QIDAQAB";

struct Fixture {
    FakeResolver dns;
    MilterServices services;
    Fixture() {
        using S = DnsStatus;
        for (const char* d : {"acme.test", "esp.test", "nodmarc.test", "tagged.test", "dry.test"}) {
            dns.set(d, rrtype::MX, S::ok, {"10 mx.test"}, {{10, "mx.test"}});
            dns.set(d, rrtype::TXT, S::ok, {"v=spf1 ip4:127.0.0.0/8 -all"});
        }
        dns.set("_dmarc.acme.test", rrtype::TXT, S::ok, {"v=DMARC1; p=reject; rua=mailto:d@acme.test"});
        dns.set("_dmarc.esp.test", rrtype::TXT, S::ok, {"v=DMARC1; p=none"});
        auto parsed = parse_config_text("t.conf",
                                        "EgressAddresses 127.0.0.1\nAuthPolicy spf\nDmarcMode reject\n"
                                        "AlignmentMode reject\nUnsubscribeMode reject\nHeaderSanityMode reject\n"
                                        "Domain tagged.test DmarcMode tag\nDomain dry.test Mode dry-run\n");
        REQUIRE(parsed.ok());
        services.config = parsed.config;
        services.resolver = &dns;
        services.egress_ips = {"127.0.0.1"};
    }
};

struct Message {
    std::vector<std::pair<std::string, std::string>> headers{
        {"From", " Acme <news@acme.test>"},           {"To", " reader@example.net"},    {"Subject", " offers"},
        {"Date", " Mon, 07 Dec 2026 10:00:00 +0000"}, {"Message-ID", " <1@acme.test>"},
    };
    Message& with(std::string name, std::string value) {
        headers.emplace_back(std::move(name), std::move(value));
        return *this;
    }
    Message& from(std::string value) {
        headers.front().second = std::move(value);
        return *this;
    }
};

Verdict run(MessageSession& s, const std::string& sender, const Message& m) {
    Verdict v = s.mail_from("<" + sender + ">", {});
    if (!v.accepted()) return v;
    s.rcpt_to("<reader@example.net>");
    for (const auto& [n, val] : m.headers) s.header(n, val);
    s.end_of_headers();
    s.body("hello\r\n");
    return s.end_of_message();
}

std::string reply_of(const Verdict& v) { return reply_text(render(v)); }

}  // namespace

TEST_CASE("session: a message meeting every requirement is accepted", "[session][message]") {
    Fixture f;
    MessageSession s(f.services);
    CHECK(run(s, "news@acme.test", Message{}).action == Verdict::Action::accept);
    CHECK(s.tag_headers().empty());
}

TEST_CASE("session: each message check refuses with its reply, the first one answers", "[session][message]") {
    Fixture f;
    {
        MessageSession s(f.services);
        Verdict v = run(s, "bounce@esp.test", Message{});
        CHECK(v.check == "alignment");
        CHECK(
            reply_of(v).starts_with("550 5.7.26 The From domain acme.test is aligned (relaxed, per its DMARC "
                                    "record) neither with the envelope sender domain esp.test (SPF not aligned)"));
    }
    {
        MessageSession s(f.services);
        Verdict v = run(s, "a@nodmarc.test", Message{}.from(" a@nodmarc.test"));
        CHECK(v.check == "dmarc");
        CHECK(reply_of(v).find("_dmarc.nodmarc.test TXT \"v=DMARC1; p=none;") != std::string::npos);
    }
    {
        MessageSession s(f.services);
        Verdict v = run(s, "news@acme.test", Message{}.with("From", " second@acme.test"));
        CHECK(v.check == "headers");  // sanity first: DMARC needs one From
        CHECK(reply_of(v).starts_with("550 5.6.0 "));
    }
    {
        MessageSession s(f.services);
        Verdict v = run(s, "news@acme.test", Message{}.with("List-Id", " <news.acme.test>"));
        CHECK(v.check == "unsubscribe");
        CHECK(reply_of(v).find("it has no List-Unsubscribe header") != std::string::npos);
    }
}

TEST_CASE("session: tag adds X-Preflight-<Check>, dry-run only logs", "[session][message]") {
    Fixture f;
    {
        MessageSession s(f.services);
        Verdict v = run(s, "a@tagged.test", Message{}.from(" a@tagged.test"));
        CHECK(v.action == Verdict::Action::accept);
        REQUIRE(s.tag_headers().size() == 1);
        CHECK(s.tag_headers()[0].name == "X-Preflight-Dmarc");
        CHECK(s.tag_headers()[0].value.starts_with("550 5.7.26 The From domain tagged.test publishes no DMARC"));
    }
    {
        MessageSession s(f.services);
        Verdict v = run(s, "a@dry.test", Message{}.from(" a@dry.test").with("Date", " again"));
        CHECK(v.action == Verdict::Action::accept);
        CHECK(s.tag_headers().empty());
        std::vector<Verdict> notes = s.take_notes();
        REQUIRE(notes.size() >= 1);
        CHECK(notes[0].check == "headers");
        CHECK(notes[0].dry_run);
        CHECK(notes[0].would == Verdict::Action::reject);
    }
}

TEST_CASE("session: message checks skip bounces; off checks read no headers", "[session][message]") {
    Fixture f;
    MessageSession bounce(f.services);
    CHECK(run(bounce, "", Message{}.from(" MAILER-DAEMON@nodmarc.test")).action == Verdict::Action::accept);

    auto parsed = parse_config_text("t.conf", "EgressAddresses 127.0.0.1\nAuthPolicy spf\n");
    REQUIRE(parsed.ok());
    f.services.config = parsed.config;
    MessageSession s(f.services);
    f.dns.asked.clear();
    CHECK(run(s, "a@nodmarc.test", Message{}.from(" a@nodmarc.test").with("From", " b@x.test")).accepted());
    CHECK_FALSE(f.dns.asked.empty());  // MX and SPF
    for (const std::string& name : f.dns.asked) CHECK(name == "nodmarc.test");  // no DMARC lookup
}

TEST_CASE("split_message: folding kept, body in CRLF, an mbox From line skipped", "[message][test-message]") {
    SplitMessage m = split_message(
        "From sender@x Mon Dec  7 10:00:00 2026\nSubject: a\n b\nFrom: x@y.test\r\n"
        "\r\nline 1\nline 2\n");
    REQUIRE(m.headers.size() == 2);
    CHECK(m.headers[0] == std::pair<std::string, std::string>{"Subject", " a\n b"});
    CHECK(m.headers[1] == std::pair<std::string, std::string>{"From", " x@y.test"});
    CHECK(m.body == "line 1\r\nline 2\r\n");
    // A line that is not a header ends the headers, as Postfix's cleanup reads it.
    SplitMessage n = split_message("Subject: a\nnot a header\nmore\n");
    CHECK(n.headers.size() == 1);
    CHECK(n.body == "not a header\r\nmore\r\n");
}

TEST_CASE("--test-message: every verdict printed, exit 0 accepted, 1 refused, 2 unreadable",
          "[message][test-message]") {
    Fixture f;
    std::filesystem::path file = std::filesystem::temp_directory_path() / "preflight-test-message.eml";
    {
        std::ofstream out(file);
        out << "From: Acme <news@acme.test>\nTo: r@example.net\nSubject: hi\n"
               "Date: Mon, 07 Dec 2026 10:00:00 +0000\nMessage-ID: <1@acme.test>\n\nhello\n";
    }
    std::ostringstream out, err;
    TestMessageRequest req{file.string(), "news@acme.test", {"r@example.net"}, false};
    CHECK(run_test_message(req, f.services.config, f.dns, out, err) == 0);
    CHECK(out.str() ==
          "MAIL FROM <news@acme.test>: accept\n"
          "  check size: accept\n"
          "  check sender-domain: accept\n"
          "  check auth: accept\n"
          "RCPT TO <r@example.net>: accept\n"
          "  check recipients: accept\n"
          "end of message: accept\n"
          "  check headers: accept\n"
          "  check dmarc: accept\n"
          "  check alignment: accept\n"
          "  check unsubscribe: accept\n"
          "result: accepted\n");

    std::ostringstream jout;
    req.from = "bounce@esp.test";
    req.json = true;
    CHECK(run_test_message(req, f.services.config, f.dns, jout, err) == 1);
    CHECK(jout.str().starts_with("{\"result\": \"refused\", \"stages\": [{\"stage\": \"MAIL FROM\""));
    CHECK(jout.str().find("{\"check\": \"alignment\", \"action\": \"reject\", \"would\": \"reject\", \"dry_run\": "
                          "false, \"reply\": \"550 5.7.26 The From domain acme.test is aligned") != std::string::npos);

    req.file = file.string() + ".missing";
    CHECK(run_test_message(req, f.services.config, f.dns, out, err) == 2);
    CHECK(err.str().find("cannot read") != std::string::npos);
    std::filesystem::remove(file);
}

TEST_CASE("metrics: the message checks are labels of their own", "[message][metrics]") {
    MilterMetrics m;
    for (std::string_view c : {check_name::headers, check_name::dmarc, check_name::alignment, check_name::unsubscribe})
        m.count_decision(Verdict::reject(c, ReplyId::dmarc_record_missing, {}));
    CHECK(m.decisions("dmarc", "reject", 550) == 1);
    CHECK(m.decisions("alignment", "reject", 550) == 1);
    CHECK(m.decisions("unsubscribe", "reject", 550) == 1);
    CHECK(m.decisions("headers", "reject", 550) == 1);
    CHECK(m.decisions("other", "reject", 550) == 0);
}

TEST_CASE("the message's keys and DMARC records are asked in one batch; the checks read the cache",
          "[session][message]") {
    Fixture f;
    BatchRecordingResolver upstream;
    upstream.answers = f.dns.answers;
    CachingResolver cache(upstream, 100);
    auto parsed = parse_config_text("t.conf",
                                    "EgressAddresses 127.0.0.1\nAuthPolicy spf\nDmarcMode reject\n"
                                    "AlignmentMode reject\nDkimSelectors pf1\nDkimPublicKey " +
                                        kRelayPublicKey + "\n");
    REQUIRE(parsed.ok());
    f.services.config = parsed.config;
    f.services.resolver = &cache;

    MessageSession s(f.services);
    REQUIRE(s.mail_from("<bounce@esp.test>", {}).accepted());
    REQUIRE(s.rcpt_to("<reader@example.net>").accepted());
    upstream.batches.clear();
    upstream.single.clear();
    // Signed by the sending service and by the author's domain (the signatures need not verify
    // for their keys to be fetched); a repeated key is asked once.
    const std::string tags = " v=1; a=rsa-sha256; c=relaxed/relaxed; h=from:to:subject;"
                             " bh=47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU=; b=dGVzdA==";
    s.header("DKIM-Signature", " d=ESP.test; s=K1;" + tags);
    s.header("DKIM-Signature", " s=s2;\r\n\td=news.acme.test;" + tags);
    s.header("DKIM-Signature", " d=esp.test; s=k1;" + tags);
    Message m;
    m.from(" News <news@news.acme.test>");
    for (const auto& [n, val] : m.headers) s.header(n, val);
    const double dns_before = s.dns_ms();
    s.end_of_headers();  // where the batch goes out: the body's transfer overlaps it
    REQUIRE(upstream.batches.size() == 1);
    CHECK(s.dns_ms() == dns_before + 1.5);  // six answers of 1.5 ms each, in parallel: one wait
    CHECK(upstream.batches[0] ==
          std::vector<std::string>{"k1._domainkey.esp.test/16", "s2._domainkey.news.acme.test/16",
                                   "_dmarc.news.acme.test/16", "_dmarc.acme.test/16",
                                   "pf1._domainkey.news.acme.test/16", "pf1._domainkey.acme.test/16"});
    s.body("hello\r\n");
    Verdict v = s.end_of_message();
    CHECK(v.check == "alignment");  // no signature verifies, esp.test does not align
    CHECK(s.dns_ms() == dns_before + 1.5);  // the checks' own lookups were cache hits
    CHECK(upstream.batches.size() == 1);
    CHECK(upstream.single.empty());  // libopendkim and every check read the cache
}

TEST_CASE("AuthPolicy dkim: the relay's key at every selector is asked in one batch", "[session][message]") {
    Fixture f;
    BatchRecordingResolver dns;
    dns.answers = f.dns.answers;
    dns.set("pf2._domainkey.esp.test", rrtype::TXT, DnsStatus::ok, {"v=DKIM1; k=rsa; p=" + kRelayPublicKey});
    auto parsed = parse_config_text("t.conf", "EgressAddresses 127.0.0.1\nAuthPolicy dkim\nSenderDomainMode off\n"
                                              "DkimSelectors pf1, pf2\nDkimPublicKey " +
                                                  kRelayPublicKey + "\n");
    REQUIRE(parsed.ok());
    f.services.config = parsed.config;
    f.services.resolver = &dns;
    MessageSession s(f.services);
    REQUIRE(s.mail_from("<bounce@esp.test>", {}).accepted());
    REQUIRE(s.rcpt_to("<reader@example.net>").accepted());
    for (const auto& [n, val] : Message{}.headers) s.header(n, val);
    s.end_of_headers();
    REQUIRE(dns.batches.size() == 1);
    CHECK(dns.batches[0] == std::vector<std::string>{"pf1._domainkey.esp.test/16", "pf2._domainkey.esp.test/16"});
    s.body("hello\r\n");
    CHECK(s.end_of_message().action == Verdict::Action::accept);  // the key is published at pf2
}
