// Can a domain receive mail (see mail_route.hpp).
#include "mail_route.hpp"

#include <memory>
#include <string>
#include <vector>

namespace preflight {

bool dns_trouble(DnsStatus s) {
    return s == DnsStatus::servfail || s == DnsStatus::timeout || s == DnsStatus::bad_answer;
}

std::string_view type_name(std::uint16_t type) {
    switch (type) {
    case rrtype::MX: return "MX";
    case rrtype::A: return "A";
    case rrtype::AAAA: return "AAAA";
    default: return "?";
    }
}

MxKind mx_kind(const DnsAnswer& a) {
    bool any = false, real = false;
    for (const MxRecord& r : a.mx) {
        any = true;
        real = real || !(r.exchange.empty() || r.exchange == ".");
    }
    if (a.mx.empty()) {
        for (const std::string& r : a.records) {
            std::size_t sp = r.find(' ');
            std::string_view ex = sp == std::string::npos ? std::string_view() : std::string_view(r).substr(sp + 1);
            while (!ex.empty() && ex.back() == '.') ex.remove_suffix(1);
            any = true;
            real = real || !ex.empty();
        }
    }
    return !any ? MxKind::none : real ? MxKind::real : MxKind::null_only;
}

MailRoute find_mail_route(Resolver& resolver, std::string_view domain) {
    using Kind = MailRoute::Kind;
    MailRoute route;
    auto mx = resolver.query(domain, rrtype::MX);
    if (!mx) mx = std::make_shared<const DnsAnswer>();  // a resolver that returns nothing: bad_answer
    route.dns_ms += mx->elapsed_ms;
    if (mx->status == DnsStatus::nxdomain) {
        route.kind = Kind::nxdomain;
        return route;
    }
    if (dns_trouble(mx->status)) {
        route.trouble_type = rrtype::MX;
        route.trouble_status = mx->status;
        return route;
    }
    switch (mx_kind(*mx)) {
    case MxKind::real: route.kind = Kind::receives; return route;
    case MxKind::null_only: route.kind = Kind::null_mx; return route;
    case MxKind::none: break;
    }

    // NODATA: implicit MX (RFC 5321 5.1), the domain's own A/AAAA, asked together.
    const std::vector<DnsQuestion> addresses{{std::string(domain), rrtype::A}, {std::string(domain), rrtype::AAAA}};
    const auto answers = resolver.query_all(addresses);
    for (const auto& a : answers) {
        route.dns_ms += a->elapsed_ms;
        if (a->status == DnsStatus::ok && !a->records.empty()) route.kind = Kind::receives;
    }
    if (route.kind == Kind::receives) return route;
    for (std::size_t i = 0; i < answers.size(); ++i) {
        if (!dns_trouble(answers[i]->status)) continue;
        route.kind = Kind::trouble;
        route.trouble_type = addresses[i].type;
        route.trouble_status = answers[i]->status;
        return route;
    }
    route.kind = Kind::no_address;
    return route;
}

}  // namespace preflight
