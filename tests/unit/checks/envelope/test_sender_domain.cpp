// Sender domain check against a fake resolver (name/type -> answer).
#include <catch2/catch.hpp>

#include <map>
#include <memory>
#include <string>
#include <utility>

#include "fake_resolver.hpp"
#include "reply_table.hpp"
#include "sender_domain_check.hpp"

using namespace preflight;

// Every refusal ends with the line naming who refused (reply_table.hpp), joined by reply_text().
static std::string marked() { return " " + std::string(refusal_marker); }

namespace {

class NullResolver : public Resolver {
public:
    std::shared_ptr<const DnsAnswer> query(std::string_view, std::uint16_t) override { return nullptr; }
};

FakeResolver zone() {
    FakeResolver r;
    using S = DnsStatus;
    r.set("good.test", rrtype::MX, S::ok, {"10 mx.good.test"}, {{10, "mx.good.test"}});
    r.set("amx.test", rrtype::MX, S::ok);  // NODATA
    r.set("amx.test", rrtype::A, S::ok, {"192.0.2.1"});
    r.set("aaaamx.test", rrtype::MX, S::ok);
    r.set("aaaamx.test", rrtype::A, S::ok);
    r.set("aaaamx.test", rrtype::AAAA, S::ok, {"2001:db8::1"});
    r.set("empty.test", rrtype::MX, S::ok);
    r.set("empty.test", rrtype::A, S::ok);
    r.set("empty.test", rrtype::AAAA, S::ok);
    r.set("nullmx.test", rrtype::MX, S::ok, {"0 ."}, {{0, ""}});
    r.set("nullmx10.test", rrtype::MX, S::ok, {"10 ."}, {{10, ""}});
    r.set("mixedmx.test", rrtype::MX, S::ok, {"0 .", "10 mx.mixed.test"}, {{0, ""}, {10, "mx.mixed.test"}});
    r.set("recordsonly.test", rrtype::MX, S::ok, {"10 mx.recordsonly.test"});
    r.set("recordsnull.test", rrtype::MX, S::ok, {"0 ."});
    r.set("servfail.test", rrtype::MX, S::servfail);
    r.set("timeout.test", rrtype::MX, S::timeout, {}, {}, 5000);
    r.set("garbage.test", rrtype::MX, S::bad_answer);
    r.set("afail.test", rrtype::MX, S::ok);
    r.set("afail.test", rrtype::A, S::servfail);
    r.set("afail.test", rrtype::AAAA, S::ok);
    r.set("afail6.test", rrtype::MX, S::ok);
    r.set("afail6.test", rrtype::A, S::servfail);
    r.set("afail6.test", rrtype::AAAA, S::ok, {"2001:db8::2"});  // AAAA answers: accept anyway
    r.set("aaaafail.test", rrtype::MX, S::ok);
    r.set("aaaafail.test", rrtype::A, S::ok);
    r.set("aaaafail.test", rrtype::AAAA, S::timeout);
    return r;
}

}  // namespace

TEST_CASE("sender domain: the decision table", "[checks][sender-domain]") {
    using A = Verdict::Action;
    struct Row {
        std::string domain;
        A action;
        ReplyId reply;
        int code;
        std::string enhanced;
    };
    const Row rows[] = {
        {"good.test", A::accept, ReplyId::none, 250, "2.0.0"},
        {"amx.test", A::accept, ReplyId::none, 250, "2.0.0"},     // implicit MX via A
        {"aaaamx.test", A::accept, ReplyId::none, 250, "2.0.0"},  // implicit MX via AAAA
        {"mixedmx.test", A::accept, ReplyId::none, 250, "2.0.0"},
        {"recordsonly.test", A::accept, ReplyId::none, 250, "2.0.0"},
        {"afail6.test", A::accept, ReplyId::none, 250, "2.0.0"},
        {"nxdomain.test", A::reject, ReplyId::sender_domain_unknown, 550, "5.1.8"},
        {"empty.test", A::reject, ReplyId::sender_domain_unknown, 550, "5.1.8"},
        {"nullmx.test", A::reject, ReplyId::sender_domain_null_mx, 550, "5.7.27"},
        {"nullmx10.test", A::reject, ReplyId::sender_domain_null_mx, 550, "5.7.27"},
        {"recordsnull.test", A::reject, ReplyId::sender_domain_null_mx, 550, "5.7.27"},
        {"servfail.test", A::tempfail, ReplyId::dns_temp_failure, 451, "4.4.3"},
        {"timeout.test", A::tempfail, ReplyId::dns_temp_failure, 451, "4.4.3"},
        {"garbage.test", A::tempfail, ReplyId::dns_temp_failure, 451, "4.4.3"},
        {"afail.test", A::tempfail, ReplyId::dns_temp_failure, 451, "4.4.3"},
        {"aaaafail.test", A::tempfail, ReplyId::dns_temp_failure, 451, "4.4.3"},
        {"[192.0.2.1]", A::accept, ReplyId::none, 250, "2.0.0"},  // literal: no DNS
        {"", A::accept, ReplyId::none, 250, "2.0.0"},
    };
    for (const Row& row : rows) {
        INFO(row.domain);
        FakeResolver r = zone();
        Verdict v = check_sender_domain(r, row.domain, {});
        CHECK(v.action == row.action);
        CHECK(v.reply == row.reply);
        CHECK(v.check == "sender-domain");
        SmtpReply rep = render(v);
        CHECK(rep.code == row.code);
        CHECK(rep.enhanced == row.enhanced);
        CHECK(missing_args(v).empty());
        CHECK(v.dns_ms == Approx(1.5 * r.queries + (row.domain == "timeout.test" ? 5000 - 1.5 : 0)));
    }
}

TEST_CASE("sender domain: UnknownDomainCode 450 and OnDnsError accept", "[checks][sender-domain]") {
    FakeResolver r = zone();
    SenderDomainOptions o;
    o.unknown_domain_code = 450;
    Verdict v = check_sender_domain(r, "nxdomain.test", o);
    CHECK(v.action == Verdict::Action::tempfail);
    SmtpReply rep = render(v);
    CHECK(rep.code == 450);
    CHECK(rep.enhanced == "4.1.8");
    // Null MX stays permanent: it is a statement, not an absence.
    CHECK(render(check_sender_domain(r, "nullmx.test", o)).code == 550);

    o = {};
    o.on_dns_error = DnsErrorAction::accept;
    v = check_sender_domain(r, "servfail.test", o);
    CHECK(v.action == Verdict::Action::accept);
    CHECK(v.reply == ReplyId::dns_temp_failure);  // kept for the log line
    CHECK(apply_mode(v, CheckMode::reject, false).action == Verdict::Action::accept);
    // But an NXDOMAIN is still an unknown domain.
    CHECK(check_sender_domain(r, "nxdomain.test", o).action == Verdict::Action::reject);
}

TEST_CASE("sender domain: reply texts", "[checks][sender-domain]") {
    FakeResolver r = zone();
    CHECK(reply_text(render(check_sender_domain(r, "nxdomain.test", {}))) ==
          "550 5.1.8 Sender address rejected: nxdomain.test does not exist in DNS (NXDOMAIN), so replies and "
          "bounces could not be delivered; use a sender address at a domain with an MX or A record" +
              marked());
    CHECK(reply_text(render(check_sender_domain(r, "empty.test", {}))).find("empty.test has no MX, A or AAAA record") !=
          std::string::npos);
    CHECK(reply_text(render(check_sender_domain(r, "nullmx.test", {}))) ==
          "550 5.7.27 Sender address rejected: nullmx.test publishes a null MX (RFC 7505) and accepts no mail, so "
          "replies and bounces could not be delivered; use a sender address at a domain that receives mail" +
              marked());
    CHECK(reply_text(render(check_sender_domain(r, "timeout.test", {}))) ==
          "451 4.4.3 DNS lookup of timeout.test/MX failed temporarily (timeout); please try again later; if this "
          "persists, check the nameservers of timeout.test" +
              marked());
    CHECK(reply_text(render(check_sender_domain(r, "afail.test", {})))
              .find("afail.test/A failed temporarily (SERVFAIL)") != std::string::npos);
}

TEST_CASE("sender domain: lookups made, and hostile resolvers", "[checks][sender-domain]") {
    FakeResolver r = zone();
    check_sender_domain(r, "good.test", {});
    CHECK(r.queries == 1);  // MX answers: no A/AAAA lookups
    r.queries = 0;
    check_sender_domain(r, "nxdomain.test", {});
    CHECK(r.queries == 1);
    r.queries = 0;
    check_sender_domain(r, "amx.test", {});
    CHECK(r.queries == 2);

    NullResolver nr;  // never answers: treated as a bad answer, so 4xx, never 5xx
    Verdict v = check_sender_domain(nr, "example.org", {});
    CHECK(v.action == Verdict::Action::tempfail);
    CHECK(render(v).code == 451);

    // A 300-octet name and control characters reach the reply only sanitised and capped.
    std::string evil = std::string(300, 'a') + "\r\n.test";
    v = check_sender_domain(r, evil, {});
    CHECK(v.action == Verdict::Action::reject);
    for (const std::string& l : render(v).lines) {
        CHECK(l.find('\r') == std::string::npos);
        CHECK(l.size() <= max_line_text);
    }
}
