// Egress reverse DNS: does every address the relay sends from (EgressAddresses) have
// forward-confirmed reverse DNS (FCrDNS): a PTR record whose name has an A (AAAA for IPv6)
// record giving that address back? Gmail, Yahoo and Microsoft require it of bulk senders and
// refuse or junk mail from an address without it. It is a property of the relay, not of a
// message: the milter checks it at start, on reload and periodically, logs and exports it
// (milter/egress_rdns_monitor.hpp), and `preflight-milter -n` reports it; nothing is refused.
//
// Lookups go through the one DNS path: every PTR at once, then every name's A/AAAA at once
// (Resolver::query_all). At most kMaxPtrNames names per address are followed (RFC 8499 allows
// several PTRs; receivers follow a few).
#pragma once

#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "config.hpp"  // IpAddress
#include "dns.hpp"

namespace preflight {

enum class FcrdnsResult {
    confirmed,      // a PTR name resolves back to the address
    no_ptr,         // NXDOMAIN or no PTR record
    not_confirmed,  // PTR names exist, none resolves back to the address
    dns_error,      // SERVFAIL, timeout or garbage where it mattered: not known
    not_checked,    // a documentation address (RFC 5737, RFC 3849): no relay sends from it
};
std::string_view to_string(FcrdnsResult r);  // "confirmed", "no_ptr", ...

inline constexpr std::size_t kMaxPtrNames = 5;

struct EgressRdns {
    IpAddress address;
    FcrdnsResult result = FcrdnsResult::dns_error;
    std::vector<std::string> ptr_names;  // as found (lower case, no trailing dot)
    std::string detail;                  // what was found, for the log ("PTR a.example resolves to 192.0.2.8")
};

// "7.2.0.192.in-addr.arpa", or the 32 nibbles under ip6.arpa.
std::string reverse_name(const IpAddress& a);

std::vector<EgressRdns> check_egress_rdns(Resolver& resolver, std::span<const IpAddress> addresses);

// One line for the log and -n: the address, the result and, unless confirmed, what to fix.
std::string describe(const EgressRdns& r);

}  // namespace preflight
