// DMARC identifier alignment (RFC 7489 3.1) as a sending relay can know it before sending: does
// the From domain align with a domain that will authenticate at the receiver?
//
//   DKIM: a signature on the message that verifies, with d= aligned (adkim: relaxed = the same
//         organisational domain, strict = equal); or this relay's DKIM key published at
//         DkimSelectors under an aligned domain (the signer further down signs with it);
//   SPF:  the envelope sender domain aligned (aspf) and SPF passing for EgressAddresses (the
//         SPF check's own outcome, SpfEgressMatch included).
//
//   one of them aligned and passing          -> accept
//   otherwise, an aligned side had DNS trouble -> 451 4.4.3 (a retry may pass)
//   otherwise                                -> 550 5.7.26 from_domain_unaligned, naming both
//                                               domains, the signers and the fix
// A plain function of the outcomes; MessageSession gathers them.
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "auth_results.hpp"
#include "dmarc.hpp"
#include "verdict.hpp"

namespace preflight {

struct AlignmentInputs {
    std::string from_domain;      // normalised
    DmarcRecord record;           // adkim, aspf (the defaults, relaxed, when there is none)
    std::string envelope_domain;  // MAIL FROM's domain
    // SPF for the envelope domain over EgressAddresses; null: not evaluated (the envelope domain
    // does not align, so SPF cannot help).
    const SpfOutcome* spf = nullptr;
    std::vector<DkimSignatureInfo> signatures;  // the message's own
    // dkim_key_published() for an aligned domain; null: not looked up (no key configured).
    const DkimOutcome* published = nullptr;
    std::string published_domain;  // where published was looked up
    std::string selector;          // the first DkimSelectors, for the reply's hint
};

Verdict check_alignment(const AlignmentInputs& in);

}  // namespace preflight
