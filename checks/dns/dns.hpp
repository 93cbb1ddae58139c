// The one DNS path of preflight-milter. Every check that needs DNS — the sender-domain check,
// SPF through libspf2's DNS layer, DKIM through libopendkim's query hooks — asks a Resolver,
// so that one TTL cache serves them all and the nameservers come from the conf alone.
// DNS trouble is never an exception: it is a status the caller turns into a 4xx.
#pragma once

#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace preflight {

namespace rrtype {
inline constexpr std::uint16_t A = 1, NS = 2, CNAME = 5, SOA = 6, PTR = 12, MX = 15, TXT = 16, AAAA = 28;
}

enum class DnsStatus {
    ok,          // NOERROR; records may be empty (NODATA)
    nxdomain,    // the name does not exist
    servfail,    // SERVFAIL or REFUSED from every nameserver
    timeout,     // no answer within DnsTimeout
    bad_answer,  // truncated beyond use, malformed, or not an answer to the question
};

struct MxRecord {
    std::uint16_t preference = 0;
    std::string exchange;  // lower case, no trailing dot; "" for the null MX "."
};

struct DnsAnswer {
    DnsStatus status = DnsStatus::bad_answer;
    // RDATA of every RR of the asked type, in presentation form without trailing dots:
    // A "192.0.2.1", AAAA "2001:db8::1", PTR "host.example.org", TXT the character-strings of
    // one record concatenated (as SPF and DKIM read them), MX "10 mx.example.org".
    std::vector<std::string> records;
    std::vector<MxRecord> mx;        // filled for MX queries
    std::vector<std::uint8_t> wire;  // the whole response in wire format (libopendkim parses it)
    std::uint32_t ttl = 0;           // seconds the answer may be cached (negative: RFC 2308)
    bool from_cache = false;
    double elapsed_ms = 0;  // time spent on the network for this answer (0 from cache)
};

// One question of a batch given to Resolver::query_all.
struct DnsQuestion {
    std::string name;  // any case, trailing dot optional
    std::uint16_t type = 0;
};

class Resolver {
public:
    virtual ~Resolver() = default;
    // Thread-safe. name is a domain name (any case, trailing dot optional).
    virtual std::shared_ptr<const DnsAnswer> query(std::string_view name, std::uint16_t type) = 0;

    // The independent lookups of one stage at once (e.g. MX and SPF TXT at MAIL FROM, DMARC
    // and DKIM keys at end of message): answers[i] answers questions[i], never null. The
    // network resolver (LdnsResolver) sends every question before it waits for any answer,
    // each with its own retransmissions, all under one DnsTimeout, so a stage waits about as
    // long as its slowest lookup, not the sum. The cache (CachingResolver) answers what it
    // holds, joins lookups already in flight and passes only the rest upstream in one batch.
    // Thread-safe. This default asks one question after the other (for test doubles).
    virtual std::vector<std::shared_ptr<const DnsAnswer>> query_all(std::span<const DnsQuestion> questions);
};

std::string_view to_string(DnsStatus s);
// For a reply's reason ("SERVFAIL", "timeout", "unusable answer"); not to_string(DnsStatus),
// which names the status for logs.
std::string_view trouble_text(DnsStatus s);

}  // namespace preflight
