// The AuthPolicy decision (see auth_policy.hpp).
#include "auth_policy.hpp"

namespace preflight {
namespace {

enum class Side { pass, fail, temp, unknown };

Side spf_side(const SpfOutcome* s) {
    if (!s) return Side::unknown;
    if (s->result == SpfResult::pass) return Side::pass;
    if (s->result == SpfResult::temperror) return Side::temp;
    return Side::fail;  // none, neutral, softfail, fail, permerror: the relay is not authorised
}

Side dkim_side(const DkimOutcome* d) {
    if (!d) return Side::unknown;
    switch (d->result) {
    case DkimResult::pass:
    case DkimResult::key_published: return Side::pass;
    case DkimResult::temperror: return Side::temp;
    case DkimResult::none:
    case DkimResult::fail:
    case DkimResult::permerror: return Side::fail;
    }
    return Side::fail;
}

// Names for the reply's detail line: RFC 8601's words (to_string), but for the two a sender
// reads better spelled out.
std::string_view spf_name(SpfResult r) { return r == SpfResult::none ? "none (no SPF record)" : to_string(r); }

std::string_view dkim_name(DkimResult r) { return r == DkimResult::key_published ? "key published" : to_string(r); }

ReplyArgs base_args(const SpfOutcome* spf, const DkimOutcome* dkim, const AuthContext& ctx) {
    ReplyArgs a;
    a.domain = ctx.domain;
    // The reply names the addresses SPF does not authorize, and the hint adds just those; an
    // outcome that does not list them (not from check_spf_for_egress) stands for the whole pool.
    const std::vector<std::string>& named = spf && !spf->unauthorized.empty() ? spf->unauthorized : ctx.egress_ips;
    for (const std::string& ip : named) {
        if (!a.ip.empty()) a.ip += ", ";
        a.ip += ip;
    }
    // SPF passes for some of the pool but must for each: say so, or the sender wonders why.
    if (ctx.spf_match == SpfEgressMatch::all && named.size() < ctx.egress_ips.size()) {
        for (const std::string& ip : ctx.egress_ips) {
            if (!a.egress.empty()) a.egress += ", ";
            a.egress += ip;
        }
    }
    a.spf_hint = ctx.spf_hint;
    if (a.spf_hint.empty()) {
        for (const std::string& ip : named) {
            if (!a.spf_hint.empty()) a.spf_hint += ' ';
            a.spf_hint += (ip.find(':') != std::string::npos ? "ip6:" : "ip4:") + ip;
        }
    }
    if (!ctx.selectors.empty()) a.selector = ctx.selectors.front();
    if (spf) {
        // "none (no SPF record)" says it already unless the explanation does ("SPF result: none
        // (example.org publishes no SPF record)", not the same twice).
        a.spf_result = spf->result == SpfResult::none && !spf->explanation.empty() ? std::string("none")
                                                                                   : std::string(spf_name(spf->result));
        a.spf_reason = spf->explanation;
    }
    if (dkim) {
        a.dkim_result = std::string(dkim_name(dkim->result));
        // Only a broken signature or key has a reason worth showing; the templates use its
        // presence to say "does not verify" instead of "is not DKIM-signed".
        if (dkim->result == DkimResult::fail || dkim->result == DkimResult::permerror) {
            a.dkim_reason = dkim->explanation.empty()
                                ? std::string(dkim->result == DkimResult::fail ? "signature invalid" : "unusable key")
                                : dkim->explanation;
            if (dkim->result == DkimResult::permerror && !dkim->selector.empty()) a.selector = dkim->selector;
        }
    }
    return a;
}

Verdict reject(ReplyId r, ReplyArgs a) { return Verdict::reject(check_name::auth, r, std::move(a)); }

// "DNS lookup of the SPF record of example.org failed temporarily (<the unit's explanation>)".
Verdict dns_trouble(ReplyArgs a, std::string_view what, const std::string& explanation) {
    a.name = std::string(what) + " of " + a.domain;
    a.reason = explanation;
    return Verdict::tempfail(check_name::auth, ReplyId::dns_temp_failure, std::move(a));
}

Verdict not_evaluated(std::string_view what) {
    ReplyArgs a;
    a.reason = std::string(what) + " was not evaluated";
    return Verdict::tempfail(check_name::auth, ReplyId::internal_temp_failure, std::move(a));
}

Verdict spf_failure(const SpfOutcome& spf, ReplyArgs a) {
    if (spf.result == SpfResult::permerror) return reject(ReplyId::spf_record_invalid, std::move(a));
    return reject(ReplyId::spf_required_failed, std::move(a));
}

Verdict dkim_failure(const DkimOutcome& dkim, ReplyArgs a) {
    switch (dkim.result) {
    case DkimResult::fail: return reject(ReplyId::dkim_signature_invalid, std::move(a));
    case DkimResult::permerror: return reject(ReplyId::dkim_key_invalid, std::move(a));
    default: return reject(ReplyId::dkim_required_failed, std::move(a));
    }
}

}  // namespace

Verdict decide_auth(AuthPolicy policy, const SpfOutcome* spf, const DkimOutcome* dkim, const AuthContext& ctx) {
    const Side s = spf_side(spf), d = dkim_side(dkim);
    auto args = [&] { return base_args(spf, dkim, ctx); };
    auto accept = [] { return Verdict::accept(check_name::auth); };

    switch (policy) {
    case AuthPolicy::off: return accept();

    case AuthPolicy::spf:
        if (s == Side::unknown) return not_evaluated("SPF");
        if (s == Side::pass) return accept();
        if (s == Side::temp) return dns_trouble(args(), "the SPF record", spf->explanation);
        return spf_failure(*spf, args());

    case AuthPolicy::dkim:
        if (d == Side::unknown) return not_evaluated("DKIM");
        if (d == Side::pass) return accept();
        if (d == Side::temp) return dns_trouble(args(), "the DKIM key", dkim->explanation);
        return dkim_failure(*dkim, args());

    case AuthPolicy::spf_or_dkim:
        if (s == Side::pass || d == Side::pass) return accept();  // one pass settles it
        if (s == Side::unknown) return not_evaluated("SPF");
        if (d == Side::unknown) return not_evaluated("DKIM");
        if (s == Side::temp) return dns_trouble(args(), "the SPF record", spf->explanation);
        if (d == Side::temp) return dns_trouble(args(), "the DKIM key", dkim->explanation);
        return reject(ReplyId::auth_failed, args());

    case AuthPolicy::spf_and_dkim:
        // A definite failure of one side settles it whatever the other side would say.
        if (s == Side::fail && d == Side::fail) return reject(ReplyId::auth_failed_all, args());
        if (s == Side::fail) return spf_failure(*spf, args());
        if (d == Side::fail) return dkim_failure(*dkim, args());
        if (s == Side::unknown) return not_evaluated("SPF");
        if (d == Side::unknown) return not_evaluated("DKIM");
        if (s == Side::temp) return dns_trouble(args(), "the SPF record", spf->explanation);
        if (d == Side::temp) return dns_trouble(args(), "the DKIM key", dkim->explanation);
        return accept();
    }
    return not_evaluated("AuthPolicy");
}

std::optional<Verdict> decide_auth_early(AuthPolicy policy, const SpfOutcome& spf, const AuthContext& ctx) {
    const Side s = spf_side(&spf);
    switch (policy) {
    case AuthPolicy::off:
    case AuthPolicy::spf: return decide_auth(policy, &spf, nullptr, ctx);
    case AuthPolicy::dkim: return std::nullopt;
    case AuthPolicy::spf_or_dkim:
        if (s == Side::pass) return Verdict::accept(check_name::auth);
        return std::nullopt;  // DKIM may still pass (even after an SPF temperror)
    case AuthPolicy::spf_and_dkim:
        if (s == Side::fail) return decide_auth(policy, &spf, nullptr, ctx);
        return std::nullopt;
    }
    return std::nullopt;
}

}  // namespace preflight
