// The AuthPolicy decision: every policy against every SPF x DKIM outcome.
#include <catch2/catch.hpp>

#include <string>

#include "auth_policy.hpp"
#include "reply_table.hpp"

using namespace preflight;

// Every refusal ends with the line naming who refused (reply_table.hpp), joined by reply_text().
static std::string marked() { return " " + std::string(refusal_marker); }

namespace {

AuthContext ctx() {
    AuthContext c;
    c.domain = "example.org";
    c.egress_ips = {"192.0.2.10"};
    c.selectors = {"pf1", "pf2"};
    c.spf_hint = "include:spf.relay.example";
    return c;
}

SpfOutcome spf(SpfResult r, std::string why = {}) { return SpfOutcome{r, std::move(why)}; }
DkimOutcome dkim(DkimResult r, std::string why = {}) { return DkimOutcome{r, {}, std::move(why)}; }

using SR = SpfResult;
using DR = DkimResult;
using A = Verdict::Action;

// Expected outcome: an action and, for non-accept, the reply.
struct Want {
    A action;
    ReplyId reply = ReplyId::none;
};

Want expected(AuthPolicy p, SR s, DR d) {
    const bool sp = s == SR::pass, dp = d == DR::pass || d == DR::key_published;
    const bool st = s == SR::temperror, dt = d == DR::temperror;
    const Want accept{A::accept};
    const Want temp{A::tempfail, ReplyId::dns_temp_failure};
    auto spf_fail = [&] {
        return Want{A::reject, s == SR::permerror ? ReplyId::spf_record_invalid : ReplyId::spf_required_failed};
    };
    auto dkim_fail = [&] {
        return Want{A::reject, d == DR::fail        ? ReplyId::dkim_signature_invalid
                               : d == DR::permerror ? ReplyId::dkim_key_invalid
                                                    : ReplyId::dkim_required_failed};
    };
    switch (p) {
    case AuthPolicy::off: return accept;
    case AuthPolicy::spf: return sp ? accept : st ? temp : spf_fail();
    case AuthPolicy::dkim: return dp ? accept : dt ? temp : dkim_fail();
    case AuthPolicy::spf_or_dkim:
        if (sp || dp) return accept;
        if (st || dt) return temp;
        return {A::reject, ReplyId::auth_failed};
    case AuthPolicy::spf_and_dkim: {
        bool sf = !sp && !st, df = !dp && !dt;
        if (sf && df) return {A::reject, ReplyId::auth_failed_all};
        if (sf) return spf_fail();
        if (df) return dkim_fail();
        if (st || dt) return temp;
        return accept;
    }
    }
    return accept;
}

}  // namespace

TEST_CASE("auth: every policy x SPF x DKIM", "[checks][auth]") {
    const AuthPolicy policies[] = {AuthPolicy::spf_or_dkim, AuthPolicy::spf_and_dkim, AuthPolicy::spf, AuthPolicy::dkim,
                                   AuthPolicy::off};
    const SR spfs[] = {SR::none, SR::neutral, SR::pass, SR::fail, SR::softfail, SR::temperror, SR::permerror};
    const DR dkims[] = {DR::none, DR::pass, DR::fail, DR::key_published, DR::temperror, DR::permerror};
    for (AuthPolicy p : policies)
        for (SR s : spfs)
            for (DR d : dkims) {
                INFO("policy=" << static_cast<int>(p) << " spf=" << static_cast<int>(s)
                               << " dkim=" << static_cast<int>(d));
                SpfOutcome so = spf(s, "why spf");
                DkimOutcome dk = dkim(d, "why dkim");
                Verdict v = decide_auth(p, &so, &dk, ctx());
                Want w = expected(p, s, d);
                CHECK(v.action == w.action);
                CHECK(v.reply == w.reply);
                CHECK(v.check == "auth");
                SmtpReply r = render(v);
                // DNS trouble never gives a 5xx; a refusal is always a 5xx.
                const bool spf_used = p != AuthPolicy::dkim && p != AuthPolicy::off;
                const bool dkim_used = p != AuthPolicy::spf && p != AuthPolicy::off;
                if ((spf_used && s == SR::temperror) || (dkim_used && d == DR::temperror)) {
                    // A 5xx despite DNS trouble only when the other side settled it for good.
                    if (v.action == A::reject) CHECK(p == AuthPolicy::spf_and_dkim);
                }
                if (v.reply == ReplyId::dns_temp_failure) CHECK(r.code == 451);
                if (v.action == A::reject) CHECK(r.code / 100 == 5);
                CHECK(missing_args(v).empty());

                // The early form agrees with the full decision whenever it decides.
                if (auto early = decide_auth_early(p, so, ctx())) {
                    CHECK(early->action == v.action);
                    // spf-and-dkim refused at MAIL FROM names SPF; at end of message, with DKIM
                    // failing too, it would say both failed.
                    if (v.reply == ReplyId::auth_failed_all)
                        CHECK((early->reply == ReplyId::spf_required_failed ||
                               early->reply == ReplyId::spf_record_invalid));
                    else CHECK(early->reply == v.reply);
                }
            }
}

TEST_CASE("auth: the early decision at MAIL FROM", "[checks][auth]") {
    auto c = ctx();
    CHECK(decide_auth_early(AuthPolicy::spf_or_dkim, spf(SR::pass), c)->action == A::accept);
    CHECK_FALSE(decide_auth_early(AuthPolicy::spf_or_dkim, spf(SR::fail), c));       // DKIM may rescue
    CHECK_FALSE(decide_auth_early(AuthPolicy::spf_or_dkim, spf(SR::temperror), c));  // likewise
    CHECK(decide_auth_early(AuthPolicy::spf, spf(SR::fail), c)->reply == ReplyId::spf_required_failed);
    CHECK(decide_auth_early(AuthPolicy::spf, spf(SR::temperror), c)->reply == ReplyId::dns_temp_failure);
    CHECK(decide_auth_early(AuthPolicy::spf, spf(SR::pass), c)->action == A::accept);
    CHECK_FALSE(decide_auth_early(AuthPolicy::dkim, spf(SR::fail), c));
    CHECK(decide_auth_early(AuthPolicy::off, spf(SR::fail), c)->action == A::accept);
    CHECK(decide_auth_early(AuthPolicy::spf_and_dkim, spf(SR::softfail), c)->reply == ReplyId::spf_required_failed);
    CHECK_FALSE(decide_auth_early(AuthPolicy::spf_and_dkim, spf(SR::pass), c));
    CHECK_FALSE(decide_auth_early(AuthPolicy::spf_and_dkim, spf(SR::temperror), c));
}

TEST_CASE("auth: a side the policy needs but nobody evaluated is a 451 4.3.0", "[checks][auth]") {
    SpfOutcome f = spf(SR::fail);
    DkimOutcome n = dkim(DR::none);
    CHECK(decide_auth(AuthPolicy::spf, nullptr, nullptr, ctx()).reply == ReplyId::internal_temp_failure);
    CHECK(decide_auth(AuthPolicy::dkim, &f, nullptr, ctx()).reply == ReplyId::internal_temp_failure);
    CHECK(decide_auth(AuthPolicy::spf_or_dkim, &f, nullptr, ctx()).reply == ReplyId::internal_temp_failure);
    CHECK(decide_auth(AuthPolicy::spf_or_dkim, nullptr, &n, ctx()).reply == ReplyId::internal_temp_failure);
    CHECK(render(decide_auth(AuthPolicy::spf, nullptr, nullptr, ctx())).code == 451);
    CHECK(decide_auth(AuthPolicy::off, nullptr, nullptr, ctx()).action == A::accept);
}

TEST_CASE("auth: reply texts", "[checks][auth]") {
    SpfOutcome none = spf(SR::none, "no SPF record");
    DkimOutcome unsigned_ = dkim(DR::none);
    Verdict v = decide_auth(AuthPolicy::spf_or_dkim, &none, &unsigned_, ctx());
    SmtpReply r = render(v);
    REQUIRE(r.lines.size() == 3);  // the reason and the fix, the SPF result, who refused
    CHECK(r.lines[2] == refusal_marker);
    CHECK(r.code == 550);
    CHECK(r.enhanced == "5.7.26");
    CHECK(r.lines[0] ==
          "example.org publishes no SPF record that allows 192.0.2.10 and its mail is not DKIM-signed; add "
          "include:spf.relay.example to its SPF record or publish the DKIM key at pf1._domainkey.example.org");
    CHECK(r.lines[1] == "SPF result: none (no SPF record)");  // the explanation, once

    // No hint configured: built from the egress addresses.
    AuthContext c = ctx();
    c.spf_hint.clear();
    c.egress_ips = {"192.0.2.10", "2001:db8::10"};
    c.selectors.clear();
    SpfOutcome fail = spf(SR::fail);
    DkimOutcome broken = dkim(DR::fail, "body hash did not verify");
    r = render(decide_auth(AuthPolicy::spf_or_dkim, &fail, &broken, c));
    CHECK(r.lines[0] ==
          "example.org publishes no SPF record that allows 192.0.2.10, 2001:db8::10 and its DKIM signature does "
          "not verify (body hash did not verify); add ip4:192.0.2.10 ip6:2001:db8::10 to its SPF record or sign its "
          "mail with a DKIM key published under example.org");

    SpfOutcome pass = spf(SR::pass);
    r = render(decide_auth(AuthPolicy::dkim, &pass, &broken, ctx()));
    CHECK(reply_text(r) ==
          "550 5.7.20 The DKIM signature of example.org does not verify (body hash did not verify); check that the "
          "key published in DNS matches the signing key and that nothing alters the message after signing" +
              marked());
    r = render(decide_auth(AuthPolicy::dkim, &pass, &unsigned_, ctx()));
    CHECK(reply_text(r) ==
          "550 5.7.20 Mail from example.org is not DKIM-signed; publish the DKIM key at "
          "pf1._domainkey.example.org" +
              marked());
    DkimOutcome badkey{DR::permerror, "pf2", "key too short"};
    r = render(decide_auth(AuthPolicy::dkim, &pass, &badkey, ctx()));
    CHECK(reply_text(r) ==
          "550 5.7.20 The DKIM key record pf2._domainkey.example.org cannot be used (key too short); "
          "publish a valid DKIM key record" +
              marked());

    SpfOutcome perm = spf(SR::permerror, "too many DNS lookups");
    r = render(decide_auth(AuthPolicy::spf, &perm, nullptr, ctx()));
    CHECK(reply_text(r) ==
          "550 5.7.24 The SPF record of example.org cannot be evaluated (too many DNS lookups); "
          "correct the record and make sure it includes include:spf.relay.example" +
              marked());
    SpfOutcome soft = spf(SR::softfail, "mechanism ~all matched");
    r = render(decide_auth(AuthPolicy::spf, &soft, nullptr, ctx()));
    CHECK(reply_text(r) ==
          "550 5.7.23 example.org publishes no SPF record that allows 192.0.2.10; add "
          "include:spf.relay.example to its SPF record SPF result: softfail (mechanism ~all matched)" +
              marked());

    SpfOutcome temp = spf(SR::temperror, "DNS timeout");
    r = render(decide_auth(AuthPolicy::spf_or_dkim, &temp, &unsigned_, ctx()));
    CHECK(reply_text(r) ==
          "451 4.4.3 DNS lookup of the SPF record of example.org failed temporarily (DNS timeout); "
          "please try again later; if this persists, check the nameservers of example.org" +
              marked());

    r = render(decide_auth(AuthPolicy::spf_and_dkim, &fail, &unsigned_, ctx()));
    CHECK(r.enhanced == "5.7.26");
    CHECK(r.lines[0].find("must pass both SPF and DKIM") != std::string::npos);
    CHECK(r.lines[0].find("to its SPF record and publish the DKIM key") != std::string::npos);
}

TEST_CASE("auth: hostile explanations from DNS are neutralised", "[checks][auth]") {
    // exp= text is chosen by the domain owner: it must not break the reply.
    SpfOutcome evil = spf(SR::fail, "bad\r\n250 2.0.0 Ok%s%n" + std::string(100000, 'x'));
    DkimOutcome n = dkim(DR::none);
    SmtpReply r = render(decide_auth(AuthPolicy::spf_or_dkim, &evil, &n, ctx()));
    CHECK(r.lines.size() <= max_reply_lines);
    for (const std::string& l : r.lines) {
        CHECK(l.find('\r') == std::string::npos);
        CHECK(l.find('\n') == std::string::npos);
        CHECK((l.find("%%s%%n") != std::string::npos || l.find("%s") == std::string::npos));
        CHECK(l.size() <= 2 * max_line_text);
    }
}

TEST_CASE("auth: SpfEgressMatch all names the egress addresses SPF does not authorize", "[checks][auth][spf]") {
    AuthContext c = ctx();
    c.domain = "example.com";
    c.spf_hint.clear();
    c.egress_ips = {"192.0.2.7", "2001:db8::7"};
    SpfOutcome v6_left_out{SR::fail, "the SPF record of example.com does not allow 2001:db8::7", {"2001:db8::7"}};

    // AuthPolicy spf: refused at once, naming only the address left out, and why the other
    // one passing is not enough; the hint adds just that address.
    std::optional<Verdict> early = decide_auth_early(AuthPolicy::spf, v6_left_out, c);
    REQUIRE(early);
    CHECK(early->action == A::reject);
    CHECK(early->reply == ReplyId::spf_required_failed);
    CHECK(reply_text(render(*early)) ==
          "550 5.7.23 example.com publishes no SPF record that allows 2001:db8::7 (SPF must pass for every address "
          "this relay sends from: 192.0.2.7, 2001:db8::7); add ip6:2001:db8::7 to its SPF record SPF result: fail "
          "(the SPF record of example.com does not allow 2001:db8::7)" +
              marked());

    // Both left out: both named, no "every address" aside (nothing passed).
    SpfOutcome both{SR::fail, "no", {"192.0.2.7", "2001:db8::7"}};
    DkimOutcome unsigned_ = dkim(DR::none);
    SmtpReply r = render(decide_auth(AuthPolicy::spf_or_dkim, &both, &unsigned_, c));
    CHECK(
        r.lines[0].starts_with("example.com publishes no SPF record that allows 192.0.2.7, 2001:db8::7 and its "
                               "mail is not DKIM-signed; add ip4:192.0.2.7 ip6:2001:db8::7 to its SPF record"));

    // SpfEgressMatch any: a failure means no address passed, so the reply names the pool.
    c.spf_match = SpfEgressMatch::any;
    r = render(decide_auth(AuthPolicy::spf, &both, nullptr, c));
    CHECK(r.lines[0] ==
          "example.com publishes no SPF record that allows 192.0.2.7, 2001:db8::7; add "
          "ip4:192.0.2.7 ip6:2001:db8::7 to its SPF record");
    // A pass for one address under any is a pass.
    SpfOutcome pass{SR::pass, "the SPF record of example.com allows 192.0.2.7"};
    CHECK(decide_auth(AuthPolicy::spf, &pass, nullptr, c).action == A::accept);
}
