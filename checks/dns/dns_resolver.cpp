#include "dns_resolver.hpp"
#include "config.hpp"
#include "dns_name.hpp"

#include <ldns/ldns.h>

#include "unique_fd.hpp"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <charconv>
#include <cstdlib>
#include <optional>
#include <stdexcept>

namespace preflight {

namespace {

using Clock = std::chrono::steady_clock;

// ---- RAII for ldns handles -------------------------------------------------------------------
struct ResolverFree {
    void operator()(ldns_resolver* r) const { ldns_resolver_deep_free(r); }
};
struct PktFree {
    void operator()(ldns_pkt* p) const { ldns_pkt_free(p); }
};
struct RdfFree {
    void operator()(ldns_rdf* r) const { ldns_rdf_deep_free(r); }
};
struct CFree {
    void operator()(void* p) const { std::free(p); }
};
using ResolverPtr = std::unique_ptr<ldns_resolver, ResolverFree>;
using PktPtr = std::unique_ptr<ldns_pkt, PktFree>;
using RdfPtr = std::unique_ptr<ldns_rdf, RdfFree>;
using CString = std::unique_ptr<char, CFree>;

constexpr std::uint16_t kEdnsSize = 1232;            // DNS flag day 2020 value
constexpr std::uint32_t kMaxPositiveTtl = 86400;     // 1 day
constexpr std::uint32_t kMaxNegativeTtl = 3 * 3600;  // RFC 2308 section 5
constexpr int kRounds = 2;
constexpr auto kMinAttempt = std::chrono::milliseconds(50);

// Presentation form of a domain name: lower case, no trailing dot, "" for the root.
std::string name_text(const ldns_rdf* rdf) {
    CString s(ldns_rdf2str(rdf));
    if (!s) return {};
    std::string out = ascii::to_lower(s.get());
    if (!out.empty() && out.back() == '.') out.pop_back();
    return out;
}

std::string rdf_text(const ldns_rdf* rdf) {
    if (ldns_rdf_get_type(rdf) == LDNS_RDF_TYPE_DNAME) return name_text(rdf);
    CString s(ldns_rdf2str(rdf));
    return s ? std::string(s.get()) : std::string();
}

// TXT: the character-strings of one record, concatenated raw (RFC 7208 3.3, RFC 6376 3.6.2.2).
std::string txt_text(const ldns_rr* rr) {
    std::string out;
    for (std::size_t i = 0; i < ldns_rr_rd_count(rr); ++i) {
        const ldns_rdf* rdf = ldns_rr_rdf(rr, i);
        const std::size_t size = ldns_rdf_size(rdf);
        const std::uint8_t* data = ldns_rdf_data(rdf);
        if (size < 1) continue;
        const std::size_t len = std::min<std::size_t>(data[0], size - 1);
        out.append(reinterpret_cast<const char*>(data) + 1, len);
    }
    return out;
}

void fill_records(DnsAnswer& a, const ldns_pkt* pkt, std::uint16_t type) {
    const ldns_rr_list* answer = ldns_pkt_answer(pkt);
    const std::size_t n = answer ? ldns_rr_list_rr_count(answer) : 0;
    std::uint32_t min_ttl = UINT32_MAX;
    for (std::size_t i = 0; i < n; ++i) {
        const ldns_rr* rr = ldns_rr_list_rr(answer, i);
        min_ttl = std::min(min_ttl, ldns_rr_ttl(rr));
        if (ldns_rr_get_type(rr) != type || ldns_rr_get_class(rr) != LDNS_RR_CLASS_IN) continue;
        switch (type) {
        case rrtype::TXT: a.records.push_back(txt_text(rr)); break;
        case rrtype::MX: {
            if (ldns_rr_rd_count(rr) < 2) break;
            MxRecord mx;
            mx.preference = ldns_rdf2native_int16(ldns_rr_rdf(rr, 0));
            mx.exchange = name_text(ldns_rr_rdf(rr, 1));
            a.records.push_back(std::to_string(mx.preference) + " " +
                                (mx.exchange.empty() ? std::string(".") : mx.exchange));
            a.mx.push_back(std::move(mx));
            break;
        }
        default: {
            std::string text;
            for (std::size_t k = 0; k < ldns_rr_rd_count(rr); ++k) {
                if (k) text += ' ';
                text += rdf_text(ldns_rr_rdf(rr, k));
            }
            a.records.push_back(std::move(text));
        }
        }
    }
    if (!a.records.empty()) {
        a.ttl = std::min(min_ttl, kMaxPositiveTtl);
        return;
    }
    // NODATA (possibly behind a CNAME): negative caching from the SOA, RFC 2308 section 5.
    a.ttl = 0;
    const ldns_rr_list* auth = ldns_pkt_authority(pkt);
    const std::size_t na = auth ? ldns_rr_list_rr_count(auth) : 0;
    for (std::size_t i = 0; i < na; ++i) {
        const ldns_rr* rr = ldns_rr_list_rr(auth, i);
        if (ldns_rr_get_type(rr) != LDNS_RR_TYPE_SOA || ldns_rr_rd_count(rr) < 7) continue;
        const std::uint32_t minimum = ldns_rdf2native_int32(ldns_rr_rdf(rr, 6));
        a.ttl = std::min({ldns_rr_ttl(rr), minimum, kMaxNegativeTtl});
        break;
    }
}

// The query message of one attempt: a fresh random ID, RD, EDNS0 with our buffer size.
struct QueryWire {
    std::vector<std::uint8_t> bytes;
    std::uint16_t id = 0;
};

std::optional<QueryWire> make_query(const ldns_rdf* qname, std::uint16_t type) {
    PktPtr q(ldns_pkt_query_new(ldns_rdf_clone(qname), static_cast<ldns_rr_type>(type), LDNS_RR_CLASS_IN, LDNS_RD));
    if (!q) return std::nullopt;
    ldns_pkt_set_random_id(q.get());
    ldns_pkt_set_edns_udp_size(q.get(), kEdnsSize);
    std::uint8_t* wire = nullptr;
    std::size_t size = 0;
    if (ldns_pkt2wire(&wire, q.get(), &size) != LDNS_STATUS_OK || !wire) return std::nullopt;
    std::unique_ptr<std::uint8_t, CFree> owned(wire);
    return QueryWire{std::vector<std::uint8_t>(wire, wire + size), ldns_pkt_id(q.get())};
}

enum class ReplyKind { usable, servfail, truncated, foreign };

// What a datagram (or TCP message) is to the attempt that sent id: only an answer to our
// question counts (RFC 5452: ID, QR, question); anything else is foreign and ignored.
ReplyKind judge_reply(const std::vector<std::uint8_t>& wire, std::uint16_t id, const ldns_rdf* qname,
                      std::uint16_t type, PktPtr& out) {
    ldns_pkt* raw = nullptr;
    if (ldns_wire2pkt(&raw, wire.data(), wire.size()) != LDNS_STATUS_OK || !raw) return ReplyKind::foreign;
    PktPtr a(raw);
    const ldns_rr_list* question = ldns_pkt_question(a.get());
    if (ldns_pkt_id(a.get()) != id || !ldns_pkt_qr(a.get()) || !question || ldns_rr_list_rr_count(question) != 1)
        return ReplyKind::foreign;
    const ldns_rr* qrr = ldns_rr_list_rr(question, 0);
    if (ldns_dname_compare(ldns_rr_owner(qrr), qname) != 0 || ldns_rr_get_type(qrr) != type ||
        ldns_rr_get_class(qrr) != LDNS_RR_CLASS_IN)
        return ReplyKind::foreign;
    if (ldns_pkt_tc(a.get())) return ReplyKind::truncated;
    const ldns_pkt_rcode rc = ldns_pkt_get_rcode(a.get());
    if (rc != LDNS_RCODE_NOERROR && rc != LDNS_RCODE_NXDOMAIN) return ReplyKind::servfail;  // REFUSED, FORMERR...
    out = std::move(a);
    return ReplyKind::usable;
}

int millis_until(Clock::time_point t) {
    const auto left = std::chrono::ceil<std::chrono::milliseconds>(t - Clock::now()).count();
    return static_cast<int>(std::clamp<long long>(left, 0, 60000));
}

// Waits for events on fd until the deadline; false on timeout or error.
bool wait_fd(int fd, short events, Clock::time_point deadline) {
    for (;;) {
        pollfd p{fd, events, 0};
        const int r = ::poll(&p, 1, millis_until(deadline));
        if (r > 0) return (p.revents & events) != 0;
        if (r == 0 || errno != EINTR) return false;
    }
}

bool tcp_send_all(int fd, const std::uint8_t* data, std::size_t size, Clock::time_point deadline) {
    while (size > 0) {
        if (!wait_fd(fd, POLLOUT, deadline)) return false;
        const ssize_t n = ::send(fd, data, size, MSG_NOSIGNAL);
        if (n < 0 && (errno == EAGAIN || errno == EINTR)) continue;
        if (n <= 0) return false;
        data += n;
        size -= static_cast<std::size_t>(n);
    }
    return true;
}

bool tcp_read_all(int fd, std::uint8_t* data, std::size_t size, Clock::time_point deadline) {
    while (size > 0) {
        if (!wait_fd(fd, POLLIN, deadline)) return false;
        const ssize_t n = ::recv(fd, data, size, 0);
        if (n < 0 && (errno == EAGAIN || errno == EINTR)) continue;
        if (n <= 0) return false;
        data += n;
        size -= static_cast<std::size_t>(n);
    }
    return true;
}

// One query over TCP (RFC 7766: two-octet length, then the message), bounded by the deadline.
std::optional<std::vector<std::uint8_t>> tcp_exchange(const sockaddr_storage& addr, socklen_t len,
                                                      const std::vector<std::uint8_t>& query,
                                                      Clock::time_point deadline) {
    UniqueFd fd(::socket(addr.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0));
    if (!fd) return std::nullopt;
    if (::connect(fd.get(), reinterpret_cast<const sockaddr*>(&addr), len) != 0 && errno != EINPROGRESS)
        return std::nullopt;
    if (!wait_fd(fd.get(), POLLOUT, deadline)) return std::nullopt;
    int err = 0;
    socklen_t err_len = sizeof err;
    if (::getsockopt(fd.get(), SOL_SOCKET, SO_ERROR, &err, &err_len) != 0 || err != 0) return std::nullopt;
    std::vector<std::uint8_t> framed{static_cast<std::uint8_t>(query.size() >> 8),
                                     static_cast<std::uint8_t>(query.size() & 0xff)};
    framed.insert(framed.end(), query.begin(), query.end());
    if (!tcp_send_all(fd.get(), framed.data(), framed.size(), deadline)) return std::nullopt;
    std::uint8_t size[2];
    if (!tcp_read_all(fd.get(), size, 2, deadline)) return std::nullopt;
    std::vector<std::uint8_t> reply((std::size_t(size[0]) << 8) | size[1]);
    if (reply.empty() || !tcp_read_all(fd.get(), reply.data(), reply.size(), deadline)) return std::nullopt;
    return reply;
}

}  // namespace

Nameserver parse_nameserver(std::string_view spec) {
    // One parser for the syntax: the conf's, which yields the canonical "ip:port" or
    // "[v6]:port"; only the split is done here.
    std::string why;
    std::optional<std::string> canonical = normalize_nameserver(spec, &why);
    if (!canonical) throw std::invalid_argument("nameserver '" + std::string(spec) + "' " + why);
    const std::size_t colon = canonical->rfind(':');
    Nameserver ns;
    std::string_view host = std::string_view(*canonical).substr(0, colon);
    if (!host.empty() && host.front() == '[') host = host.substr(1, host.size() - 2);
    ns.address = std::string(host);
    ns.port = static_cast<std::uint16_t>(std::stoul(canonical->substr(colon + 1)));
    return ns;
}

// One UDP attempt: its own connected socket (the kernel then delivers only datagrams from
// that server's address and port) and its own ID.
struct UdpAttempt {
    UniqueFd fd;
    std::size_t server = 0;
    std::uint16_t id = 0;
    std::vector<std::uint8_t> query;  // kept for a TCP retry after TC
};

struct LdnsResolver::Lookup {
    RdfPtr qname;
    std::uint16_t type = 0;
    Clock::time_point start;
    std::shared_ptr<DnsAnswer> result = std::make_shared<DnsAnswer>();
    std::vector<UdpAttempt> attempts;  // open sockets, each still waiting for its own answer
    std::vector<bool> server_done;     // gave a definite failure: not asked again
    std::size_t sent = 0;              // attempts made; attempt k goes to server k % n
    Clock::time_point next_send;
    bool any_servfail = false, any_bad = false, finished = false;
    PktPtr reply;
    std::vector<std::uint8_t> reply_wire;

    void finish(DnsStatus st) {
        finished = true;
        attempts.clear();  // closes the sockets
        result->status = st;
        result->elapsed_ms = std::chrono::duration<double, std::milli>(Clock::now() - start).count();
    }
    void fail() { finish(any_servfail ? DnsStatus::servfail : any_bad ? DnsStatus::bad_answer : DnsStatus::timeout); }
    bool all_servers_done() const {
        return std::find(server_done.begin(), server_done.end(), false) == server_done.end();
    }
};

LdnsResolver::LdnsResolver(const std::vector<std::string>& nameservers, std::chrono::milliseconds timeout)
    : timeout_(timeout) {
    if (timeout_ <= std::chrono::milliseconds(0)) throw std::invalid_argument("DNS timeout must be positive");
    for (const auto& s : nameservers) servers_.push_back(parse_nameserver(s));
    if (servers_.empty()) {
        ldns_resolver* raw = nullptr;
        if (ldns_resolver_new_frm_file(&raw, "/etc/resolv.conf") != LDNS_STATUS_OK || !raw)
            throw std::runtime_error("cannot read nameservers from /etc/resolv.conf");
        ResolverPtr sys(raw);
        ldns_rdf** list = ldns_resolver_nameservers(sys.get());
        for (std::size_t i = 0; i < ldns_resolver_nameserver_count(sys.get()); ++i) {
            CString text(ldns_rdf2str(list[i]));
            if (text) servers_.push_back({text.get(), ldns_resolver_port(sys.get())});
        }
        if (servers_.empty()) throw std::runtime_error("/etc/resolv.conf names no nameserver");
    }
    for (const Nameserver& ns : servers_) {
        ServerAddress sa;
        auto* v4 = reinterpret_cast<sockaddr_in*>(&sa.addr);
        auto* v6 = reinterpret_cast<sockaddr_in6*>(&sa.addr);
        if (inet_pton(AF_INET, ns.address.c_str(), &v4->sin_addr) == 1) {
            v4->sin_family = AF_INET;
            v4->sin_port = htons(ns.port);
            sa.len = sizeof(sockaddr_in);
        } else if (inet_pton(AF_INET6, ns.address.c_str(), &v6->sin6_addr) == 1) {
            v6->sin6_family = AF_INET6;
            v6->sin6_port = htons(ns.port);
            sa.len = sizeof(sockaddr_in6);
        } else {
            throw std::invalid_argument("nameserver '" + ns.address + "' is not a numeric address");
        }
        addresses_.push_back(sa);
    }
    const auto n = static_cast<int>(servers_.size());
    per_attempt_ = std::max<std::chrono::milliseconds>(kMinAttempt, timeout_ / (kRounds * n));
    max_attempts_ = static_cast<std::size_t>(kRounds * n);
}

LdnsResolver::~LdnsResolver() = default;

// Sends the lookup's next attempt to the next server not done with it. A socket that cannot
// be made or a datagram that cannot be sent (no route) is an attempt that went unheard: the
// next one is due at once.
void LdnsResolver::send_attempt(Lookup& lk) const {
    const std::size_t n = servers_.size();
    while (lk.sent < max_attempts_ && lk.server_done[lk.sent % n]) ++lk.sent;
    if (lk.sent >= max_attempts_) return;
    const std::size_t server = lk.sent++ % n;
    lk.next_send = Clock::now();
    std::optional<QueryWire> q = make_query(lk.qname.get(), lk.type);
    if (!q) return;
    const ServerAddress& sa = addresses_[server];
    UniqueFd fd(::socket(sa.addr.ss_family, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0));
    if (!fd || ::connect(fd.get(), reinterpret_cast<const sockaddr*>(&sa.addr), sa.len) != 0) return;
    if (::send(fd.get(), q->bytes.data(), q->bytes.size(), 0) != static_cast<ssize_t>(q->bytes.size())) return;
    lk.attempts.push_back({std::move(fd), server, q->id, std::move(q->bytes)});
    lk.next_send = Clock::now() + per_attempt_;  // from when the datagram left, not when we began
}

// A datagram (or an error) on attempt i's socket.
void LdnsResolver::read_attempt(Lookup& lk, std::size_t i, Clock::time_point deadline) const {
    std::vector<std::uint8_t> buf(65535);
    const ssize_t got = ::recv(lk.attempts[i].fd.get(), buf.data(), buf.size(), 0);
    if (got < 0) {
        if (errno == EAGAIN || errno == EINTR) return;
        // ICMP unreachable or the like: nothing will come on this socket; move on at once.
        lk.attempts.erase(lk.attempts.begin() + static_cast<std::ptrdiff_t>(i));
        lk.next_send = Clock::now();
        return;
    }
    buf.resize(static_cast<std::size_t>(got));
    take_reply(lk, i, std::move(buf), deadline);
}

void LdnsResolver::take_reply(Lookup& lk, std::size_t i, std::vector<std::uint8_t> wire,
                              Clock::time_point deadline) const {
    const UdpAttempt& at = lk.attempts[i];
    const std::size_t server = at.server;
    PktPtr pkt;
    ReplyKind kind = judge_reply(wire, at.id, lk.qname.get(), lk.type, pkt);
    if (kind == ReplyKind::truncated) {
        const ServerAddress& sa = addresses_[server];
        std::optional<std::vector<std::uint8_t>> tcp = tcp_exchange(sa.addr, sa.len, at.query, deadline);
        kind = tcp ? judge_reply(*tcp, at.id, lk.qname.get(), lk.type, pkt) : ReplyKind::foreign;
        if (kind == ReplyKind::truncated) kind = ReplyKind::foreign;    // truncated over TCP: garbage
        if (kind == ReplyKind::foreign) lk.server_done[server] = true;  // its TCP gave nothing usable
        if (tcp) wire = std::move(*tcp);
    }
    switch (kind) {
    case ReplyKind::usable:
        lk.reply = std::move(pkt);
        lk.reply_wire = std::move(wire);
        lk.finish(DnsStatus::ok);  // the status is refined by the caller from the reply
        return;
    case ReplyKind::servfail:
        lk.any_servfail = true;
        lk.server_done[server] = true;
        break;
    case ReplyKind::foreign:
    case ReplyKind::truncated: lk.any_bad = true; break;
    }
    if (lk.all_servers_done()) lk.fail();
}

// The poll loop of one batch: sends what is due, waits for the first datagram or the next
// send, reads it; until every lookup has an answer, has run out of servers, or the deadline.
void LdnsResolver::serve(std::span<Lookup> lookups, Clock::time_point deadline) const {
    std::vector<pollfd> fds;
    std::vector<std::pair<Lookup*, std::size_t>> owners;
    for (;;) {
        Clock::time_point wake = deadline;
        fds.clear();
        owners.clear();
        for (Lookup& lk : lookups) {
            if (lk.finished) continue;
            if (Clock::now() >= deadline) {
                lk.fail();
                continue;
            }
            while (!lk.finished && lk.sent < max_attempts_ && lk.next_send <= Clock::now()) send_attempt(lk);
            if (lk.attempts.empty() && lk.sent >= max_attempts_) {
                lk.fail();  // every attempt went unheard at once (refused, unreachable)
                continue;
            }
            if (lk.sent < max_attempts_) wake = std::min(wake, lk.next_send);
            for (std::size_t i = 0; i < lk.attempts.size(); ++i) {
                fds.push_back({lk.attempts[i].fd.get(), POLLIN, 0});
                owners.emplace_back(&lk, i);
            }
        }
        if (std::all_of(lookups.begin(), lookups.end(), [](const Lookup& lk) { return lk.finished; })) return;
        const int r = ::poll(fds.data(), fds.size(), millis_until(wake));
        if (r < 0 && errno != EINTR) {  // cannot wait (ENOMEM): what is unanswered stays unanswered
            for (Lookup& lk : lookups)
                if (!lk.finished) lk.fail();
            return;
        }
        // Backwards, so that erasing attempt i of a lookup leaves the indices still to visit valid.
        for (std::size_t k = fds.size(); k-- > 0;) {
            auto [lk, i] = owners[k];
            if (fds[k].revents == 0 || lk->finished) continue;
            read_attempt(*lk, i, deadline);
        }
    }
}

std::shared_ptr<const DnsAnswer> LdnsResolver::query(std::string_view name, std::uint16_t type) {
    const DnsQuestion q{std::string(name), type};
    return query_all(std::span<const DnsQuestion>(&q, 1)).front();
}

std::vector<std::shared_ptr<const DnsAnswer>> LdnsResolver::query_all(std::span<const DnsQuestion> questions) {
    const auto start = Clock::now();
    std::vector<Lookup> lookups(questions.size());
    for (std::size_t i = 0; i < questions.size(); ++i) {
        Lookup& lk = lookups[i];
        lk.type = questions[i].type;
        lk.start = start;
        lk.next_send = start;
        lk.server_done.assign(servers_.size(), false);
        std::string name = ascii::to_lower(questions[i].name);
        if (!name.empty() && name.back() == '.') name.pop_back();
        // A name DNS cannot carry (empty, label > 63, > 253 octets) cannot exist: nxdomain, uncached.
        lk.qname.reset(name.empty() ? nullptr : ldns_dname_new_frm_str(name.c_str()));
        if (!lk.qname) lk.finish(DnsStatus::nxdomain);
    }
    serve(lookups, start + timeout_);

    std::vector<std::shared_ptr<const DnsAnswer>> answers;
    answers.reserve(lookups.size());
    for (Lookup& lk : lookups) {
        if (lk.reply) {
            DnsAnswer& a = *lk.result;
            a.wire = std::move(lk.reply_wire);
            fill_records(a, lk.reply.get(), lk.type);
            if (ldns_pkt_get_rcode(lk.reply.get()) == LDNS_RCODE_NXDOMAIN) {
                a.records.clear();
                a.mx.clear();
                a.status = DnsStatus::nxdomain;
            }
        }
        answers.push_back(std::move(lk.result));
    }
    return answers;
}

}  // namespace preflight
