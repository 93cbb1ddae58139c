// Recipient domain check against a fake resolver (name/type -> answer): which domains can
// receive, and the replies that tell the sender what to fix.
#include <catch2/catch.hpp>

#include <string>

#include "fake_resolver.hpp"
#include "recipient_domain_check.hpp"
#include "reply_table.hpp"

using namespace preflight;

namespace {

FakeResolver zone() {
    FakeResolver r;
    using S = DnsStatus;
    r.set("good.test", rrtype::MX, S::ok, {"10 mx.good.test"}, {{10, "mx.good.test"}});
    r.set("amx.test", rrtype::MX, S::ok);  // NODATA: implicit MX
    r.set("amx.test", rrtype::A, S::ok, {"192.0.2.1"});
    r.set("amx.test", rrtype::AAAA, S::ok);
    r.set("aaaamx.test", rrtype::MX, S::ok);
    r.set("aaaamx.test", rrtype::A, S::ok);
    r.set("aaaamx.test", rrtype::AAAA, S::ok, {"2001:db8::1"});
    r.set("empty.test", rrtype::MX, S::ok);
    r.set("empty.test", rrtype::A, S::ok);
    r.set("empty.test", rrtype::AAAA, S::ok);
    r.set("nullmx.test", rrtype::MX, S::ok, {"0 ."}, {{0, ""}});
    r.set("mixedmx.test", rrtype::MX, S::ok, {"0 .", "10 mx.mixed.test"}, {{0, ""}, {10, "mx.mixed.test"}});
    r.set("servfail.test", rrtype::MX, S::servfail);
    r.set("slowa.test", rrtype::MX, S::ok);
    r.set("slowa.test", rrtype::A, S::timeout);
    r.set("slowa.test", rrtype::AAAA, S::ok);
    return r;
}

Verdict check(FakeResolver& r, const std::string& domain, DnsErrorAction on_error = DnsErrorAction::tempfail) {
    return check_recipient_domain(r, "user@" + domain, domain, RecipientDomainOptions{on_error});
}

std::string reply_of(const Verdict& v) { return reply_text(render(v)); }

}  // namespace

TEST_CASE("recipient domains that receive are accepted", "[recipient_domain]") {
    FakeResolver r = zone();
    CHECK(check(r, "good.test").action == Verdict::Action::accept);
    CHECK(check(r, "amx.test").action == Verdict::Action::accept);      // no MX, an A: implicit MX
    CHECK(check(r, "aaaamx.test").action == Verdict::Action::accept);   // no MX, an AAAA
    CHECK(check(r, "mixedmx.test").action == Verdict::Action::accept);  // a real MX beside the null one
    // No DNS for address literals and the empty domain.
    const int before = r.queries;
    CHECK(check_recipient_domain(r, "user@[192.0.2.1]", "[192.0.2.1]", {}).action == Verdict::Action::accept);
    CHECK(check_recipient_domain(r, "postmaster", "", {}).action == Verdict::Action::accept);
    CHECK(r.queries == before);
}

TEST_CASE("recipient domains that cannot receive are refused with the fix", "[recipient_domain]") {
    FakeResolver r = zone();
    SECTION("NXDOMAIN: 550 5.1.2") {
        Verdict v = check(r, "example.invalid");
        CHECK(v.action == Verdict::Action::reject);
        CHECK(v.check == "recipient-domain");
        CHECK(v.dns_ms > 0);
        const std::string text = reply_of(v);
        CHECK(
            text.starts_with("550 5.1.2 Recipient address <user@example.invalid> rejected: the recipient domain "
                             "example.invalid does not exist (NXDOMAIN); check the address for a typo"));
        CHECK(reply_of(apply_mode(v, CheckMode::tempfail, false)).starts_with("450 4.1.2 "));
    }
    SECTION("no MX, A or AAAA: 550 5.1.2") {
        Verdict v = check(r, "empty.test");
        CHECK(v.action == Verdict::Action::reject);
        CHECK_THAT(reply_of(v), Catch::StartsWith("550 5.1.2 ") && Catch::Contains("has no MX, A or AAAA record"));
    }
    SECTION("null MX: 556 5.1.10") {
        Verdict v = check(r, "nullmx.test");
        CHECK(v.action == Verdict::Action::reject);
        CHECK(v.reply == ReplyId::recipient_domain_null_mx);
        CHECK_THAT(reply_of(v), Catch::StartsWith("556 5.1.10 Recipient address <user@nullmx.test> rejected: "
                                                  "the recipient domain nullmx.test publishes a null MX (RFC 7505)"));
        CHECK(reply_of(apply_mode(v, CheckMode::tempfail, false)).starts_with("450 4.1.10 "));
    }
}

TEST_CASE("DNS trouble about a recipient domain is a 4xx, never a 5xx", "[recipient_domain]") {
    FakeResolver r = zone();
    Verdict v = check(r, "servfail.test");
    CHECK(v.action == Verdict::Action::tempfail);
    CHECK_THAT(reply_of(v),
               Catch::StartsWith("451 4.4.3 DNS lookup of servfail.test/MX failed temporarily (SERVFAIL)"));
    // No MX and the A lookup timed out: the domain may well have an address; not "unknown".
    Verdict a = check(r, "slowa.test");
    CHECK(a.action == Verdict::Action::tempfail);
    CHECK_THAT(reply_of(a), Catch::Contains("slowa.test/A") && Catch::Contains("timeout"));
    // OnDnsError accept: through, with the reply kept for the log.
    Verdict accepted = check(r, "servfail.test", DnsErrorAction::accept);
    CHECK(accepted.action == Verdict::Action::accept);
    CHECK(accepted.reply == ReplyId::dns_temp_failure);
}
