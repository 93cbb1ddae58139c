// LdnsResolver: the network end of the one DNS path — a stub resolver over ldns that asks the
// configured nameservers (or those of /etc/resolv.conf) and turns every outcome into a
// DnsStatus. Put a CachingResolver (dns_cache.hpp) in front of it; nothing else in preflight
// talks to the network for DNS.
//
// Per query: UDP first (EDNS0, 1232 bytes), TCP when the reply is truncated. Attempts go to
// the nameservers in turn, one every DnsTimeout / (2 x nameservers) (50 ms at least), at most
// two rounds, all inside one overall deadline (DnsTimeout). Each attempt has its own connected
// UDP socket (its own source port and random ID) that stays open until the deadline: as in
// glibc's stub resolver and unbound, a retransmission does not give up on the earlier attempts,
// so a server that takes longer than one attempt to recurse is still heard. A reply counts only
// if it comes from the server's address and port (the connected socket), and its ID, QR bit and
// question match the attempt's; anything else is ignored (RFC 5452) and the socket keeps
// listening. SERVFAIL/REFUSED/FORMERR/NOTIMP from a server stops further attempts to it; when
// none gives a usable answer the result is servfail (some server said so), bad_answer (some
// reply was garbage) or timeout (silence), in that order of preference. A server that refuses
// the datagram (ICMP port unreachable) gives way to the next attempt at once.
//
// query_all sends every question's first attempt before it waits for any answer and serves
// all of them from one poll loop under one deadline. A truncated reply's TCP exchange is made
// on the spot (bounded by the deadline); the other questions' answers wait in their sockets.
//
// TTL rules (DnsAnswer::ttl): positive answers — the smallest TTL in the answer section,
// capped at 1 day. Negative answers (NXDOMAIN, NODATA) — RFC 2308: min(SOA TTL, SOA MINIMUM)
// of the SOA in the authority section, capped at 3 hours (RFC 2308 section 5); without a SOA
// the answer may not be cached (ttl 0). There is no floor: a TTL of 0 means "do not cache".
// Failures (servfail, timeout, bad_answer) carry ttl 0; the cache decides how long to
// remember them.
//
// Threads: nothing is shared between calls but the nameserver list, fixed at construction;
// every call owns its sockets.
#pragma once

#include "dns.hpp"

#include <sys/socket.h>

#include <chrono>
#include <cstdint>
#include <memory>
#include <span>
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
    std::vector<std::shared_ptr<const DnsAnswer>> query_all(std::span<const DnsQuestion> questions) override;

    const std::vector<Nameserver>& nameservers() const { return servers_; }
    std::chrono::milliseconds timeout() const { return timeout_; }

    struct Lookup;  // one question in flight (dns_resolver.cpp)

private:
    struct ServerAddress {
        sockaddr_storage addr{};
        socklen_t len = 0;
    };

    void send_attempt(Lookup& lk) const;
    void read_attempt(Lookup& lk, std::size_t attempt, std::chrono::steady_clock::time_point deadline) const;
    void take_reply(Lookup& lk, std::size_t server, std::vector<std::uint8_t> wire,
                    std::chrono::steady_clock::time_point deadline) const;
    void serve(std::span<Lookup> lookups, std::chrono::steady_clock::time_point deadline) const;

    std::vector<Nameserver> servers_;
    std::vector<ServerAddress> addresses_;  // servers_ as socket addresses
    std::chrono::milliseconds timeout_;
    std::chrono::milliseconds per_attempt_;
    std::size_t max_attempts_ = 0;
};

}  // namespace preflight
