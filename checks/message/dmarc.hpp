// DMARC (RFC 7489) as far as a sending relay needs it: the From domain's organisational domain,
// the discovery of its DMARC record, the record's syntax, and the check that one is published.
//
// Organisational domain: the registrable domain by the Public Suffix List, through libpsl. The
// list is psl_latest()'s: the system file of Debian's publicsuffix package
// (/usr/share/publicsuffix/public_suffix_list.dafsa) when it is newer than the copy built into
// libpsl, else the built-in one. The package is updated with the list more often than libpsl
// (whose copy is frozen when the library is built), and the built-in copy keeps working on a
// host without the file. Loaded once per process, read-only afterwards (thread-safe).
//
// Discovery (RFC 7489 6.6.3): TXT at _dmarc.FROM-DOMAIN; records that do not start with
// "v=DMARC1" are not DMARC records; none there and FROM-DOMAIN is not its organisational
// domain: TXT at _dmarc.ORG-DOMAIN. Lookups go through the given Resolver (the one DNS path and
// its cache).
#pragma once

#include <string>
#include <string_view>

#include "config.hpp"  // DnsErrorAction (OnDnsError): the conf's vocabulary
#include "dns.hpp"
#include "verdict.hpp"

namespace preflight {

// The organisational domain of domain (lower case, no trailing dot): "mail.example.co.uk" ->
// "example.co.uk". A domain that is itself a public suffix, or has no registrable part, is its
// own organisational domain.
std::string organizational_domain(std::string_view domain);

// Relaxed alignment (same organisational domain) or strict (equal), RFC 7489 3.1.
bool domains_aligned(std::string_view a, std::string_view b, bool strict);

struct DmarcRecord {
    std::string policy = "none";  // p=: none, quarantine, reject (lower case)
    bool strict_dkim = false;     // adkim=s
    bool strict_spf = false;      // aspf=s
};

// One TXT record's text. Valid: v=DMARC1 as the first tag, then tags "name=value" separated by
// ';', p= present with none, quarantine or reject; sp= (if present) the same; adkim= and aspf=
// r or s; pct= 0..100. error says what is wrong ("p=block is not none, quarantine or reject").
struct DmarcParse {
    DmarcRecord record;
    std::string error;  // empty: valid
};
DmarcParse parse_dmarc_record(std::string_view txt);

struct DmarcLookup {
    enum class Status { found, missing, invalid, dns_error };
    Status status = Status::missing;
    DmarcRecord record;       // found
    std::string from_domain;  // normalised
    std::string org_domain;   // the From domain's organisational domain
    std::string name;         // found/invalid: where; missing: every name looked up ("_dmarc.a, _dmarc.b")
    std::string error;        // invalid: why; dns_error: the DNS status ("SERVFAIL")
    std::string dns_name;     // dns_error: the name that failed
    double dns_ms = 0;
};
DmarcLookup lookup_dmarc(Resolver& resolver, std::string_view from_domain);

// The DMARC record check over a lookup:
//   found                    -> accept
//   missing                  -> 550 5.7.26 dmarc_record_missing (how to publish one)
//   invalid                  -> 550 5.7.26 dmarc_record_invalid (what is wrong)
//   DNS trouble              -> 451 4.4.3, or accept with OnDnsError accept (the reply kept for the log)
Verdict check_dmarc_record(const DmarcLookup& lookup, DnsErrorAction on_dns_error);

}  // namespace preflight
