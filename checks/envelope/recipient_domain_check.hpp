// Recipient domain: can the RCPT TO domain receive mail at all? (Postfix's
// reject_unknown_recipient_domain, plus RFC 7505 null MX.) Refusing such a recipient at RCPT
// tells the sender at once, instead of a bounce from the relay's queue later; the message goes
// on for its other recipients.
//
//   MX records, or no MX but an A/AAAA (implicit MX)  -> accept
//   only the null MX "."    -> 556 5.1.10 recipient_domain_null_mx (RFC 7505 section 4.3)
//   NXDOMAIN                -> 550 5.1.2 recipient_domain_unknown ("does not exist")
//   no MX, A or AAAA        -> 550 5.1.2 recipient_domain_unknown ("has no MX, A or AAAA record")
//   SERVFAIL, timeout, bad answer
//                           -> 451 4.4.3 dns_temp_failure, or accept with OnDnsError accept
// Address literals and the empty domain (<postmaster>) need no DNS and are accepted. Answers
// come through the one DNS path, so a domain's second recipient costs no lookup.
#pragma once

#include <string_view>

#include "config.hpp"  // DnsErrorAction (OnDnsError)
#include "dns.hpp"
#include "verdict.hpp"

namespace preflight {

struct RecipientDomainOptions {
    DnsErrorAction on_dns_error = DnsErrorAction::tempfail;  // OnDnsError
};

// address: the recipient as the reply names it ("user@example.org"); domain: normalised (as
// Mailbox::domain), "" or "[...]" for no DNS check.
Verdict check_recipient_domain(Resolver& resolver, std::string_view address, std::string_view domain,
                               const RecipientDomainOptions& options);

}  // namespace preflight
