// LdnsResolver: the network end of the one DNS path — a stub resolver over ldns that asks the
// configured nameservers (or those of /etc/resolv.conf) and turns every outcome into a
// DnsStatus. Put a CachingResolver (dns_cache.hpp) in front of it; nothing else in preflight
// talks to the network for DNS.
//
// Per query: UDP first (EDNS0, 1232 bytes), TCP when the reply is truncated; each nameserver
// is tried in order, and those that did not answer at all get a second round, all inside one
// overall deadline (DnsTimeout). A reply counts only if its ID, QR bit and question match the
// query. SERVFAIL/REFUSED/FORMERR/NOTIMP from a server moves on to the next one; when none
// gives a usable answer the result is servfail (some server said so), bad_answer (some reply
// was garbage) or timeout (silence), in that order of preference.
//
// TTL rules (DnsAnswer::ttl): positive answers — the smallest TTL in the answer section,
// capped at 1 day. Negative answers (NXDOMAIN, NODATA) — RFC 2308: min(SOA TTL, SOA MINIMUM)
// of the SOA in the authority section, capped at 3 hours (RFC 2308 section 5); without a SOA
// the answer may not be cached (ttl 0). There is no floor: a TTL of 0 means "do not cache".
// Failures (servfail, timeout, bad_answer) carry ttl 0; the cache decides how long to
// remember them.
//
// Threads: an ldns_resolver is not thread-safe, so each query borrows a private set of
// resolvers (one per nameserver, because ldns has a single port per resolver) from a small
// pool; the pool keeps a bounded number of idle sets.
#pragma once

#include "dns.hpp"

#include <chrono>
#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <vector>

namespace preflight {

struct Nameserver {
    std::string address;  // numeric IPv4 or IPv6
    std::uint16_t port = 53;
};

// Parses "ip", "ip:port", "[v6]" or "[v6]:port" (a bare v6 address takes port 53).
// Throws std::invalid_argument naming the bad part.
Nameserver parse_nameserver(std::string_view spec);

class LdnsResolver final : public Resolver {
public:
    // nameservers empty = those of /etc/resolv.conf (read once, here). Throws
    // std::invalid_argument for a bad nameserver string and std::runtime_error when the
    // system configuration has no usable nameserver. timeout bounds each query overall.
    LdnsResolver(const std::vector<std::string>& nameservers, std::chrono::milliseconds timeout);
    ~LdnsResolver() override;
    LdnsResolver(const LdnsResolver&) = delete;
    LdnsResolver& operator=(const LdnsResolver&) = delete;

    std::shared_ptr<const DnsAnswer> query(std::string_view name, std::uint16_t type) override;

    const std::vector<Nameserver>& nameservers() const { return servers_; }
    std::chrono::milliseconds timeout() const { return timeout_; }

    struct Session;  // one ldns_resolver per nameserver, used by one thread at a time

private:
    std::unique_ptr<Session> acquire();
    void release(std::unique_ptr<Session> s);

    std::vector<Nameserver> servers_;
    std::chrono::milliseconds timeout_;
    std::mutex pool_mutex_;
    std::vector<std::unique_ptr<Session>> idle_;
};

}  // namespace preflight
