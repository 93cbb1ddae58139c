// SPF (RFC 7208) through libspf2, with libspf2's DNS layer replaced by ours: every lookup the
// library makes goes to the given Resolver (normally the shared CachingResolver), so SPF costs
// no DNS traffic once a domain's records are cached.
//
// What we add on top of libspf2 1.2.10:
//  - no "localhost free ride": libspf2's query entry points pass 127.0.0.0/8 and ::1 without
//    looking at DNS; preflight evaluates the record for every address (its egress addresses may
//    well be loopback in tests);
//  - RFC 7208 4.6.4 limits across includes: libspf2 counts DNS-querying terms per record only,
//    so ours counts them for the whole evaluation (more than 10 -> permerror) and counts void
//    lookups (NXDOMAIN/NODATA for a, mx, ptr, exists; more than 2 -> permerror); once a limit
//    is exceeded no further DNS query is made;
//  - a record that exists but does not compile is permerror (libspf2 calls it "not SPF");
//  - a record that is exactly "v=spf1" is evaluated (neutral) instead of being ignored.
// Include loops end as permerror through the term limit (and libspf2's depth limit of 20),
// never as a hang.
//
// Threads: an SPF_server_t carries our DNS layer, whose per-evaluation state (resolver,
// counters) lives in the layer's hook; so a server is used by one evaluation at a time. A small
// pool hands out servers; all functions here are thread-safe.
#pragma once

#include "auth_results.hpp"
#include "config.hpp"  // SpfEgressMatch: the conf's vocabulary
#include "dns.hpp"

#include <string>
#include <string_view>
#include <vector>

namespace preflight {

// check_host() for one client address. sender_domain is the domain whose record is evaluated;
// mail_from (may be empty) supplies the local part for macros (postmaster when absent); helo
// (may be empty) is only used for the %{h} macro. client_ip is numeric IPv4 or IPv6; an
// unparsable one gives permerror.
SpfOutcome check_spf(Resolver& resolver, std::string_view sender_domain, std::string_view mail_from,
                     std::string_view client_ip, std::string_view helo);

// One egress address and what check_spf() said for it.
struct EgressSpf {
    std::string ip;
    SpfOutcome outcome;
};

// The SPF verdict over the relay's egress addresses (SpfEgressMatch), from the outcome for
// each address in EgressAddresses order. A pure function: check_spf_for_egress() feeds it.
//   all  pass when every address passes. Otherwise a definite non-pass (fail, softfail,
//        neutral, none, permerror) of any address settles it (a retry cannot change it): the
//        first one's result, and `unauthorized` lists every address without pass for good;
//        only when the others pass and some had DNS trouble: temperror.
//   any  pass when one address passes. Otherwise temperror if some address had DNS trouble (a
//        retry may pass), else the first address's result with every address unauthorized.
// The explanation names the addresses. No outcomes at all: none ("no egress addresses
// configured").
SpfOutcome combine_egress_spf(std::string_view sender_domain, const std::vector<EgressSpf>& per_address,
                              SpfEgressMatch match);

// check_spf() for the relay's egress addresses, combined by combine_egress_spf(). With any,
// evaluation stops at the first address that passes; with all, every address is evaluated so
// that the reply can name each one the record leaves out (cheap: the lookups are cached).
SpfOutcome check_spf_for_egress(Resolver& resolver, std::string_view sender_domain, std::string_view mail_from,
                                const std::vector<std::string>& egress_ips, SpfEgressMatch match = SpfEgressMatch::all);

}  // namespace preflight
