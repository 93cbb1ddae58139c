#include "dns_resolver.hpp"
#include "config.hpp"
#include "dns_name.hpp"

#include <ldns/ldns.h>

#include <arpa/inet.h>

#include <algorithm>
#include <cctype>
#include <charconv>
#include <cstdlib>
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
constexpr std::size_t kMaxIdleSessions = 16;
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

enum class Attempt { answered, servfail, bad, silent };

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

struct LdnsResolver::Session {
    std::vector<ResolverPtr> per_server;
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
}

LdnsResolver::~LdnsResolver() = default;

std::unique_ptr<LdnsResolver::Session> LdnsResolver::acquire() {
    {
        std::lock_guard lock(pool_mutex_);
        if (!idle_.empty()) {
            auto s = std::move(idle_.back());
            idle_.pop_back();
            return s;
        }
    }
    auto s = std::make_unique<Session>();
    for (const auto& ns : servers_) {
        ResolverPtr r(ldns_resolver_new());
        const bool v6 = ns.address.find(':') != std::string::npos;
        RdfPtr addr(ldns_rdf_new_frm_str(v6 ? LDNS_RDF_TYPE_AAAA : LDNS_RDF_TYPE_A, ns.address.c_str()));
        if (!r || !addr || ldns_resolver_push_nameserver(r.get(), addr.get()) != LDNS_STATUS_OK)
            throw std::runtime_error("ldns: cannot set up resolver for " + ns.address);
        ldns_resolver_set_port(r.get(), ns.port);
        ldns_resolver_set_recursive(r.get(), true);
        ldns_resolver_set_retry(r.get(), 1);  // our loop does the retrying, on a deadline
        ldns_resolver_set_retrans(r.get(), 0);
        ldns_resolver_set_fallback(r.get(), false);  // TCP on TC is ours too, for the deadline
        ldns_resolver_set_igntc(r.get(), false);
        ldns_resolver_set_dnsrch(r.get(), false);
        ldns_resolver_set_defnames(r.get(), false);
        ldns_resolver_set_random(r.get(), false);
        ldns_resolver_set_edns_udp_size(r.get(), kEdnsSize);
        s->per_server.push_back(std::move(r));
    }
    return s;
}

void LdnsResolver::release(std::unique_ptr<Session> s) {
    std::lock_guard lock(pool_mutex_);
    if (idle_.size() < kMaxIdleSessions) idle_.push_back(std::move(s));
}

std::shared_ptr<const DnsAnswer> LdnsResolver::query(std::string_view name_in, std::uint16_t type) {
    const auto start = Clock::now();
    const auto deadline = start + timeout_;
    auto result = std::make_shared<DnsAnswer>();
    auto finish = [&](DnsStatus st) {
        result->status = st;
        result->elapsed_ms = std::chrono::duration<double, std::milli>(Clock::now() - start).count();
        return result;
    };

    std::string name = ascii::to_lower(name_in);
    if (!name.empty() && name.back() == '.') name.pop_back();
    // A name DNS cannot carry (empty, label > 63, > 253 octets) cannot exist: nxdomain, uncached.
    RdfPtr qname(name.empty() ? nullptr : ldns_dname_new_frm_str(name.c_str()));
    if (!qname) return finish(DnsStatus::nxdomain);

    std::unique_ptr<Session> session;
    try {
        session = acquire();
    } catch (const std::exception&) {
        return finish(DnsStatus::servfail);
    }

    const std::size_t n = session->per_server.size();
    const auto per_attempt = std::max<std::chrono::milliseconds>(kMinAttempt, timeout_ / static_cast<int>(kRounds * n));
    std::vector<bool> done(n, false);  // servers that gave a definite (non-)answer
    bool any_servfail = false, any_bad = false;

    // One exchange with one server; on success *out holds the validated reply.
    auto exchange = [&](ldns_resolver* r, bool tcp, PktPtr& out) -> Attempt {
        const auto now = Clock::now();
        if (now >= deadline) return Attempt::silent;
        const auto left = std::chrono::duration_cast<std::chrono::microseconds>(deadline - now);
        const auto wait = std::min<std::chrono::microseconds>(left, per_attempt);
        timeval tv{static_cast<time_t>(wait.count() / 1000000), static_cast<suseconds_t>(wait.count() % 1000000)};
        ldns_resolver_set_timeout(r, tv);
        ldns_resolver_set_usevc(r, tcp);
        // ldns marks a server that failed once as unreachable forever; we decide that ourselves.
        ldns_resolver_set_nameserver_rtt(r, 0, LDNS_RESOLV_RTT_MIN);

        ldns_pkt* raw_q = nullptr;
        if (ldns_resolver_prepare_query_pkt(&raw_q, r, qname.get(), static_cast<ldns_rr_type>(type), LDNS_RR_CLASS_IN,
                                            LDNS_RD) != LDNS_STATUS_OK ||
            !raw_q)
            return Attempt::bad;
        PktPtr q(raw_q);
        ldns_pkt_set_random_id(q.get());
        ldns_pkt_set_edns_udp_size(q.get(), kEdnsSize);

        ldns_pkt* raw_a = nullptr;
        const ldns_status st = ldns_resolver_send_pkt(&raw_a, r, q.get());
        PktPtr a(raw_a);
        if (st != LDNS_STATUS_OK || !a) {
            switch (st) {
            case LDNS_STATUS_NETWORK_ERR:
            case LDNS_STATUS_SOCKET_ERROR:
            case LDNS_STATUS_ADDRESS_ERR:
            case LDNS_STATUS_RES_NO_NS:
            case LDNS_STATUS_ERR:
            case LDNS_STATUS_OK: return Attempt::silent;
            default: return Attempt::bad;  // the reply did not parse
            }
        }
        // Only an answer to our question counts (RFC 5452: ID, question, QR).
        const ldns_rr_list* question = ldns_pkt_question(a.get());
        if (ldns_pkt_id(a.get()) != ldns_pkt_id(q.get()) || !ldns_pkt_qr(a.get()) || !question ||
            ldns_rr_list_rr_count(question) != 1)
            return Attempt::bad;
        const ldns_rr* qrr = ldns_rr_list_rr(question, 0);
        if (ldns_dname_compare(ldns_rr_owner(qrr), qname.get()) != 0 || ldns_rr_get_type(qrr) != type ||
            ldns_rr_get_class(qrr) != LDNS_RR_CLASS_IN)
            return Attempt::bad;
        out = std::move(a);
        return Attempt::answered;
    };

    PktPtr reply;
    for (int round = 0; round < kRounds && !reply; ++round) {
        for (std::size_t i = 0; i < n && !reply; ++i) {
            if (done[i] || Clock::now() >= deadline) continue;
            ldns_resolver* r = session->per_server[i].get();
            PktPtr got;
            Attempt at = exchange(r, false, got);
            if (at == Attempt::answered && ldns_pkt_tc(got.get())) {
                got.reset();
                at = exchange(r, true, got);
                if (at == Attempt::answered && ldns_pkt_tc(got.get())) at = Attempt::bad;
            }
            if (at == Attempt::answered) {
                const ldns_pkt_rcode rc = ldns_pkt_get_rcode(got.get());
                if (rc == LDNS_RCODE_NOERROR || rc == LDNS_RCODE_NXDOMAIN) {
                    reply = std::move(got);
                    break;
                }
                at = Attempt::servfail;  // SERVFAIL, REFUSED, FORMERR, NOTIMP...: ask the next
            }
            if (at == Attempt::servfail) any_servfail = true;
            if (at == Attempt::bad) any_bad = true;
            if (at != Attempt::silent) done[i] = true;
        }
    }
    release(std::move(session));

    if (!reply) {
        return finish(any_servfail ? DnsStatus::servfail : any_bad ? DnsStatus::bad_answer : DnsStatus::timeout);
    }
    std::uint8_t* wire = nullptr;
    std::size_t wire_size = 0;
    if (ldns_pkt2wire(&wire, reply.get(), &wire_size) == LDNS_STATUS_OK && wire) {
        std::unique_ptr<std::uint8_t, CFree> owned(wire);
        result->wire.assign(owned.get(), owned.get() + wire_size);
    }
    fill_records(*result, reply.get(), type);
    if (ldns_pkt_get_rcode(reply.get()) == LDNS_RCODE_NXDOMAIN) {
        result->records.clear();
        result->mx.clear();
        return finish(DnsStatus::nxdomain);
    }
    return finish(DnsStatus::ok);
}

}  // namespace preflight
