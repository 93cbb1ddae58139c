// Sender domain check (see sender_domain_check.hpp).
#include "sender_domain_check.hpp"

#include "mail_route.hpp"

#include <memory>
#include <string>

namespace preflight {
namespace {

struct Lookup {
    Resolver& resolver;
    std::string_view domain;
    double ms = 0;

    // Kept as the shared answer: no copy of the records or wire bytes on the hot path.
    std::shared_ptr<const DnsAnswer> query(std::uint16_t type) {
        auto a = resolver.query(domain, type);
        if (!a) a = std::make_shared<const DnsAnswer>();  // a resolver that returns nothing: bad_answer
        ms += a->elapsed_ms;
        return a;
    }
};

}  // namespace

Verdict check_sender_domain(Resolver& resolver, std::string_view domain, const SenderDomainOptions& options) {
    if (domain.empty() || domain.front() == '[') return Verdict::accept(check_name::sender_domain);

    Lookup lk{resolver, domain};
    ReplyArgs args;
    args.domain = std::string(domain);

    auto finish = [&](Verdict v) {
        v.dns_ms = lk.ms;
        return v;
    };
    auto trouble = [&](std::uint16_t type, DnsStatus s) {
        ReplyArgs a = args;
        a.name = std::string(domain) + "/" + std::string(type_name(type));
        a.reason = std::string(trouble_text(s));
        Verdict v = Verdict::tempfail(check_name::sender_domain, ReplyId::dns_temp_failure, std::move(a));
        if (options.on_dns_error == DnsErrorAction::accept) {
            // Accepted, but the reply stays in the verdict so that the log says why.
            v.action = v.decided = v.would = Verdict::Action::accept;
        }
        return finish(std::move(v));
    };
    auto unknown = [&](std::string reason) {
        ReplyArgs a = args;
        a.reason = std::move(reason);
        return finish(options.unknown_domain_code == 450
                          ? Verdict::tempfail(check_name::sender_domain, ReplyId::sender_domain_unknown, std::move(a))
                          : Verdict::reject(check_name::sender_domain, ReplyId::sender_domain_unknown, std::move(a)));
    };

    auto mx = lk.query(rrtype::MX);
    if (mx->status == DnsStatus::nxdomain) return unknown("does not exist in DNS (NXDOMAIN)");
    if (dns_trouble(mx->status)) return trouble(rrtype::MX, mx->status);
    switch (mx_kind(*mx)) {
    case MxKind::real: return finish(Verdict::accept(check_name::sender_domain));
    case MxKind::null_only:
        return finish(Verdict::reject(check_name::sender_domain, ReplyId::sender_domain_null_mx, args));
    case MxKind::none: break;
    }

    // NODATA: implicit MX (RFC 5321 5.1), the domain's own A/AAAA.
    auto a = lk.query(rrtype::A);
    if (a->status == DnsStatus::ok && !a->records.empty()) return finish(Verdict::accept(check_name::sender_domain));
    auto aaaa = lk.query(rrtype::AAAA);
    if (aaaa->status == DnsStatus::ok && !aaaa->records.empty())
        return finish(Verdict::accept(check_name::sender_domain));
    if (dns_trouble(a->status)) return trouble(rrtype::A, a->status);
    if (dns_trouble(aaaa->status)) return trouble(rrtype::AAAA, aaaa->status);
    return unknown("has no MX, A or AAAA record");
}

}  // namespace preflight
