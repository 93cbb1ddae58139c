// Can a domain receive mail? The DNS reading the sender-domain and recipient-domain checks
// share (RFC 5321 section 5.1, RFC 7505):
//
//   MX records             -> receives (the MX hosts themselves are not resolved, as Postfix)
//   only the null MX "."   -> null_mx: the domain says it accepts no mail
//   NODATA for MX          -> implicit MX: A or AAAA present -> receives, else no_address
//   NXDOMAIN               -> nxdomain
//   SERVFAIL, timeout, bad answer on a lookup that matters -> trouble (never "does not exist")
#pragma once

#include <cstdint>
#include <string_view>

#include "dns.hpp"

namespace preflight {

enum class MxKind { none, null_only, real };

// RFC 7505: "MX 0 ." says the domain accepts no mail. A null MX mixed with real ones is a
// misconfiguration, but the real ones still receive: that counts as real. Reads the presentation
// records ("10 mx.example.org", "0 .") if a resolver filled only those.
MxKind mx_kind(const DnsAnswer& a);

bool dns_trouble(DnsStatus s);
std::string_view type_name(std::uint16_t type);  // "MX", "A", "AAAA"

struct MailRoute {
    enum class Kind { receives, null_mx, nxdomain, no_address, trouble };
    Kind kind = Kind::trouble;
    std::uint16_t trouble_type = 0;  // the lookup that failed, for trouble
    DnsStatus trouble_status = DnsStatus::bad_answer;
    double dns_ms = 0;  // sum of DnsAnswer::elapsed_ms of the lookups made
};

// MX first; only on NODATA the A and AAAA records, both at once (Resolver::query_all).
// domain: normalised, not empty, not an address literal.
MailRoute find_mail_route(Resolver& resolver, std::string_view domain);

}  // namespace preflight
