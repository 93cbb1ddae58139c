// The authentication decision: does the sender domain authorise this relay, by SPF for the
// egress addresses, by DKIM, or both, as AuthPolicy requires?
//
// Inputs are the plain outcomes of the SPF and DKIM units (auth_results.hpp); a null pointer
// means "not evaluated (yet)". Passing: SPF pass; DKIM pass or key_published (our key is at one
// of DkimSelectors, so the signer further down will sign).
//
//   off           accept
//   spf           SPF must pass         else 550 5.7.23 (permerror: 550 5.7.24)
//   dkim          DKIM must pass        else 550 5.7.20 (no signature / broken / unusable key)
//   spf-or-dkim   one must pass         else 550 5.7.26 auth_failed
//   spf-and-dkim  both must pass        else the failing side's reply, 550 5.7.26 if both fail
// DNS trouble (temperror) gives 451 4.4.3, never a 5xx -- unless the outcome is settled without
// the side that had trouble (spf-or-dkim with the other side passing: accept; spf-and-dkim with
// the other side failing for good: that side's 5xx), because retrying could not change it.
// A side the policy needs but that was not evaluated is our own bug: 451 4.3.0.
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "auth_results.hpp"
#include "config.hpp"  // AuthPolicy: the conf's vocabulary
#include "verdict.hpp"

namespace preflight {

struct AuthContext {
    std::string domain;                              // sender domain (normalised)
    std::vector<std::string> egress_ips;             // EgressAddresses SPF was evaluated for
    SpfEgressMatch spf_match = SpfEgressMatch::all;  // for which of them SPF must pass
    std::vector<std::string> selectors;              // DkimSelectors; the first is named in the reply
    std::string spf_hint;                            // what to add to SPF ("include:spf.relay.example");
                                                     // empty: "ip4:..."/"ip6:..." of the addresses SPF
                                                     // does not authorize
};

Verdict decide_auth(AuthPolicy policy, const SpfOutcome* spf, const DkimOutcome* dkim, const AuthContext& ctx);

// At MAIL FROM, with only SPF known: the verdict if SPF alone settles it (policy spf; spf-or-dkim
// with SPF pass; spf-and-dkim with SPF failing for good), else nullopt: wait for DKIM at end of
// message.
std::optional<Verdict> decide_auth_early(AuthPolicy policy, const SpfOutcome& spf, const AuthContext& ctx);

}  // namespace preflight
