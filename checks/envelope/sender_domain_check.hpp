// Sender domain: can the MAIL FROM domain receive replies and bounces? (Postfix's
// reject_unknown_sender_domain, plus RFC 7505 null MX.)
//
//   MX records             -> accept (the MX hosts themselves are not resolved, as Postfix)
//   only the null MX "."   -> 550 5.7.27 sender_domain_null_mx
//   NODATA for MX          -> implicit MX (RFC 5321 5.1): A or AAAA present -> accept, else unknown
//   NXDOMAIN               -> unknown: 550 5.1.8, or 450 4.1.8 with UnknownDomainCode 450
//   SERVFAIL, timeout, bad answer (on any lookup that matters)
//                          -> 451 4.4.3 dns_temp_failure, or accept with OnDnsError accept;
//                             never a 5xx: a domain we could not look up is not unknown.
// Address literals ([192.0.2.1]) and the empty domain (null sender, <postmaster>) need no DNS and
// are accepted. The verdict's dns_ms is the sum of DnsAnswer::elapsed_ms of the lookups made.
#pragma once

#include <string_view>

#include "config.hpp"  // DnsErrorAction (OnDnsError): the conf's vocabulary
#include "dns.hpp"
#include "verdict.hpp"

namespace preflight {

struct SenderDomainOptions {
    int unknown_domain_code = 550;                           // UnknownDomainCode: 550 or 450
    DnsErrorAction on_dns_error = DnsErrorAction::tempfail;  // OnDnsError
};

// domain: normalised (as Mailbox::domain: lower case, A-label form, no trailing dot).
Verdict check_sender_domain(Resolver& resolver, std::string_view domain, const SenderDomainOptions& options);

}  // namespace preflight
