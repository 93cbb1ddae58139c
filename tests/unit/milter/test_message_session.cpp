// MessageSession end to end over a fake resolver: the decisions preflight-milter makes for a
// transaction, stage by stage, with no MTA and no network.
#include <catch2/catch.hpp>

#include <map>

#include "fake_resolver.hpp"
#include "message_session.hpp"

using namespace preflight;

namespace {

struct Fixture {
    FakeResolver dns;
    MilterServices services;
    explicit Fixture(const std::string& extra_conf = "") {
        using S = DnsStatus;
        dns.set("good.test", rrtype::MX, S::ok, {"10 mx.good.test"}, {{10, "mx.good.test"}});
        dns.set("good.test", rrtype::TXT, S::ok, {"v=spf1 ip4:127.0.0.0/8 -all"});
        dns.set("nullmx.test", rrtype::MX, S::ok, {"0 "}, {{0, ""}});
        dns.set("nospf.test", rrtype::MX, S::ok, {"10 mx.nospf.test"}, {{10, "mx.nospf.test"}});
        dns.set("nospf.test", rrtype::TXT, S::ok);  // NODATA
        dns.set("servfail.test", rrtype::MX, S::servfail);
        dns.set("dry.test", rrtype::MX, S::ok, {"10 mx.dry.test"}, {{10, "mx.dry.test"}});
        dns.set("tag.test", rrtype::MX, S::ok, {"10 mx.tag.test"}, {{10, "mx.tag.test"}});
        auto parsed = parse_config_text("t.conf",
                                        "EgressAddresses 127.0.0.1\nAuthPolicy spf\n"
                                        "Domain dry.test Mode dry-run\nDomain tag.test AuthMode tag\n" +
                                            extra_conf);
        INFO((parsed.errors.empty() ? std::string() : parsed.errors.front().to_string()));
        REQUIRE(parsed.ok());
        services.config = parsed.config;
        services.resolver = &dns;
        services.egress_ips = {"127.0.0.1"};
    }
};

std::string reply_of(const Verdict& v) { return reply_text(render(v)); }

}  // namespace

TEST_CASE("a good sender passes every stage; recipient 51 is told to come back", "[session]") {
    Fixture f;
    MessageSession s(f.services);
    Verdict v = s.mail_from("<alice@good.test>", {"SIZE=1000"});
    CHECK(v.action == Verdict::Action::accept);
    for (int i = 1; i <= 50; ++i)
        CHECK(s.rcpt_to("<r" + std::to_string(i) + "@example.org>").action == Verdict::Action::accept);
    v = s.rcpt_to("<r51@example.org>");
    CHECK(v.action == Verdict::Action::tempfail);
    CHECK(reply_of(v).rfind("452 4.5.3 ", 0) == 0);
    CHECK(s.accepted_recipients() == 50);
    s.header("Subject", "hi");
    s.end_of_headers();
    CHECK(s.body("hello\r\n").action == Verdict::Action::accept);
    CHECK(s.end_of_message().action == Verdict::Action::accept);
}

TEST_CASE("sender domain verdicts at MAIL FROM", "[session]") {
    Fixture f;
    {
        MessageSession s(f.services);
        Verdict v = s.mail_from("<bob@noexist.test>", {});
        CHECK(v.action == Verdict::Action::reject);
        CHECK(reply_of(v).rfind("550 5.1.8 ", 0) == 0);
    }
    {
        MessageSession s(f.services);
        Verdict v = s.mail_from("<bob@nullmx.test>", {});
        CHECK(reply_of(v).rfind("550 5.7.27 ", 0) == 0);
    }
    {
        MessageSession s(f.services);
        Verdict v = s.mail_from("<bob@servfail.test>", {});
        CHECK(v.action == Verdict::Action::tempfail);
        CHECK(reply_of(v).rfind("451 4.4.3 ", 0) == 0);
    }
    {
        MessageSession s(f.services);
        Verdict v = s.mail_from("<bob@nospf.test>", {});
        CHECK(v.action == Verdict::Action::reject);
        CHECK(reply_of(v).rfind("550 5.7.23 ", 0) == 0);  // AuthPolicy spf decides at MAIL FROM
    }
}

TEST_CASE("the null sender skips the sender checks", "[session]") {
    Fixture f;
    MessageSession s(f.services);
    int before = f.dns.queries;
    CHECK(s.mail_from("<>", {}).action == Verdict::Action::accept);
    CHECK(f.dns.queries == before);
    CHECK(s.rcpt_to("<postmaster@example.org>").action == Verdict::Action::accept);
    CHECK(s.end_of_message().action == Verdict::Action::accept);
}

TEST_CASE("size: announced at MAIL FROM, counted in the body", "[session]") {
    Fixture f;
    {
        MessageSession s(f.services);
        Verdict v = s.mail_from("<a@good.test>", {"SIZE=22020096"});
        CHECK(reply_of(v).rfind("552 5.3.4 ", 0) == 0);
    }
    MessageSession s(f.services);
    REQUIRE(s.mail_from("<a@good.test>", {}).accepted());
    REQUIRE(s.rcpt_to("<x@example.org>").accepted());
    s.header("Subject", "big");
    s.end_of_headers();
    std::string chunk(65536, 'x');
    Verdict v = Verdict::accept("size");
    int chunks = 0;
    while (v.accepted() && chunks < 1000) v = s.body(chunk), ++chunks;
    CHECK(v.action == Verdict::Action::reject);
    CHECK(reply_of(v).rfind("552 5.3.4 ", 0) == 0);
    CHECK(chunks == 320);  // headers (16 bytes) + 320 chunks of 64 KiB: the first past 20 MiB
}

TEST_CASE("dry-run and tag modes accept and say what would have happened", "[session]") {
    Fixture f;
    {
        MessageSession s(f.services);
        Verdict v = s.mail_from("<a@dry.test>", {});
        CHECK(v.action == Verdict::Action::accept);
        auto notes = s.take_notes();
        REQUIRE(notes.size() == 1);
        CHECK(notes[0].dry_run);
        CHECK(notes[0].would == Verdict::Action::reject);
        CHECK(notes[0].check == "auth");
        CHECK(s.take_notes().empty());
        CHECK(s.tag_headers().empty());  // dry-run adds no header
    }
    {
        MessageSession s(f.services);
        Verdict v = s.mail_from("<a@tag.test>", {});
        CHECK(v.accepted());
        auto notes = s.take_notes();
        REQUIRE(notes.size() == 1);
        CHECK(notes[0].action == Verdict::Action::tag);
        REQUIRE(s.tag_headers().size() == 1);
        CHECK(s.tag_headers()[0].name == "X-Preflight-Auth");
    }
}

TEST_CASE("bad envelope syntax names the bad part", "[session]") {
    Fixture f;
    MessageSession s(f.services);
    Verdict v = s.mail_from("<a b@good.test>", {});
    CHECK(v.action == Verdict::Action::reject);
    CHECK(reply_of(v).rfind("501 5.1.7 ", 0) == 0);
    MessageSession s2(f.services);
    REQUIRE(s2.mail_from("<a@good.test>", {}).accepted());
    v = s2.rcpt_to("<x@-bad-.example>");
    CHECK(reply_of(v).rfind("501 5.1.3 ", 0) == 0);
}

// Found by fuzz_milter: with the syntax check in tag mode the transaction went on, and the auth
// check ran at end of message on the empty domain ("450 4.7.20 Mail from  is not DKIM-signed").
TEST_CASE("an unparsable sender let through in tag mode skips the auth check", "[session]") {
    for (const char* conf : {"EnvelopeSyntaxMode tag\n", "EnvelopeSyntaxMode off\n",
                             "EnvelopeSyntaxMode tag\nAuthMode tempfail\nMode dry-run\n"}) {
        INFO(conf);
        Fixture f(conf);
        MessageSession s(f.services);
        const int before = f.dns.queries;
        Verdict v = s.mail_from("<a b@good.test>", {});
        CHECK(v.accepted());
        CHECK(s.sender_domain().empty());
        REQUIRE(s.rcpt_to("<x@example.org>").accepted());
        s.header("Subject", "hi");
        s.end_of_headers();
        CHECK(s.body("hello\r\n").accepted());
        v = s.end_of_message();
        CHECK(v.action == Verdict::Action::accept);
        CHECK(f.dns.queries == before);  // nothing looked up for a domain there is not
        for (const TagHeader& h : s.tag_headers()) CHECK(h.name != "X-Preflight-Auth");
    }
}

TEST_CASE("SpfEgressMatch at MAIL FROM: a dual-stack pool, the record authorizes one of two", "[session][spf]") {
    using S = DnsStatus;
    FakeResolver dns;
    for (const char* d : {"pool.test", "lenient.test"}) {
        dns.set(d, rrtype::MX, S::ok, {std::string("10 mx.") + d}, {{10, std::string("mx.") + d}});
        dns.set(d, rrtype::TXT, S::ok, {"v=spf1 ip4:192.0.2.7 -all"});
    }
    auto parsed = parse_config_text("t.conf",
                                    "EgressAddresses 192.0.2.7, 2001:db8::7\nAuthPolicy spf\n"
                                    "Domain lenient.test SpfEgressMatch any\n");
    REQUIRE(parsed.ok());
    MilterServices services;
    services.config = parsed.config;
    services.resolver = &dns;
    for (const IpAddress& ip : parsed.config->global().egress_addresses) services.egress_ips.push_back(ip.to_string());
    REQUIRE(services.egress_ips == std::vector<std::string>{"192.0.2.7", "2001:db8::7"});
    {
        MessageSession s(services);  // SpfEgressMatch all (the default): refused, naming 2001:db8::7
        Verdict v = s.mail_from("<news@pool.test>", {});
        CHECK(v.action == Verdict::Action::reject);
        CHECK(
            reply_of(v).starts_with("550 5.7.23 pool.test publishes no SPF record that allows 2001:db8::7 (SPF "
                                    "must pass for every address this relay sends from: 192.0.2.7, 2001:db8::7); "
                                    "add ip6:2001:db8::7 to its SPF record"));
    }
    {
        MessageSession s(services);  // Domain lenient.test SpfEgressMatch any: accepted
        CHECK(s.mail_from("<news@lenient.test>", {}).action == Verdict::Action::accept);
        CHECK(s.rcpt_to("<a@example.org>").action == Verdict::Action::accept);
        CHECK(s.end_of_message().action == Verdict::Action::accept);
    }
}

TEST_CASE("MAIL FROM asks for the sender domain's MX and SPF TXT in one batch", "[session]") {
    Fixture f;
    BatchRecordingResolver dns;
    dns.answers = f.dns.answers;
    f.services.resolver = &dns;
    MessageSession s(f.services);
    CHECK(s.mail_from("<alice@good.test>", {}).action == Verdict::Action::accept);
    REQUIRE(dns.batches.size() == 1);
    CHECK(dns.batches[0] == std::vector<std::string>{"good.test/15", "good.test/16"});

    SECTION("one lookup is no batch") {
        Fixture g("SenderDomainMode off\n");
        BatchRecordingResolver one;
        one.answers = g.dns.answers;
        g.services.resolver = &one;
        MessageSession t(g.services);
        CHECK(t.mail_from("<alice@good.test>", {}).action == Verdict::Action::accept);
        CHECK(one.batches.empty());
    }
}

TEST_CASE("recipient domains at RCPT TO: the bad ones refused, the message goes on", "[session][recipient_domain]") {
    Fixture f(
        "RecipientDomainMode reject\nDomain dry.test RecipientDomainMode reject\n"
        "Domain tag.test RecipientDomainMode tag\n");
    f.dns.set("example.org", rrtype::MX, DnsStatus::ok, {"10 mx.example.org"}, {{10, "mx.example.org"}});
    f.dns.set("dead.test", rrtype::MX, DnsStatus::ok, {"0 ."}, {{0, ""}});
    SECTION("enforce") {
        MessageSession s(f.services);
        REQUIRE(s.mail_from("<alice@good.test>", {}).accepted());
        CHECK(s.rcpt_to("<bob@example.org>").action == Verdict::Action::accept);
        Verdict nx = s.rcpt_to("<bob@exmaple.org>");
        CHECK(nx.action == Verdict::Action::reject);
        CHECK_THAT(reply_of(nx), Catch::StartsWith("550 5.1.2 Recipient address <bob@exmaple.org> rejected: the "
                                                   "recipient domain exmaple.org does not exist (NXDOMAIN)"));
        Verdict null = s.rcpt_to("<carol@dead.test>");
        CHECK(null.action == Verdict::Action::reject);
        CHECK(reply_of(null).starts_with("556 5.1.10 "));
        CHECK(s.rcpt_to("<dave@example.org>").action == Verdict::Action::accept);
        CHECK(s.accepted_recipients() == 2);
        CHECK(s.end_of_message().action == Verdict::Action::accept);
    }
    SECTION("dry-run logs and accepts") {
        MessageSession s(f.services);
        REQUIRE(s.mail_from("<alice@dry.test>", {}).accepted());
        s.take_notes();  // MAIL FROM's own (dry.test publishes no SPF)
        CHECK(s.rcpt_to("<bob@exmaple.org>").action == Verdict::Action::accept);
        auto notes = s.take_notes();
        REQUIRE(notes.size() == 1);
        CHECK(notes[0].dry_run);
        CHECK(notes[0].check == "recipient-domain");
        CHECK(s.accepted_recipients() == 1);
    }
    SECTION("tag adds the header") {
        MessageSession s(f.services);
        REQUIRE(s.mail_from("<alice@tag.test>", {}).accepted());
        const std::size_t before = s.tag_headers().size();  // tag.test's own AuthMode tag
        CHECK(s.rcpt_to("<carol@dead.test>").accepted());
        CHECK(s.accepted_recipients() == 1);
        REQUIRE(s.tag_headers().size() == before + 1);
        CHECK(s.tag_headers().back().name == "X-Preflight-Recipient-Domain");
        CHECK_THAT(s.tag_headers().back().value, Catch::StartsWith("556 5.1.10 "));
    }
    SECTION("off by default: no lookup") {
        Fixture g;
        MessageSession s(g.services);
        REQUIRE(s.mail_from("<alice@good.test>", {}).accepted());
        const int before = g.dns.queries;
        CHECK(s.rcpt_to("<bob@exmaple.org>").action == Verdict::Action::accept);
        CHECK(g.dns.queries == before);
    }
}
