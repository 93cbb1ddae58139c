// Recipient domain check (see recipient_domain_check.hpp).
#include "recipient_domain_check.hpp"

#include "mail_route.hpp"

#include <string>

namespace preflight {

Verdict check_recipient_domain(Resolver& resolver, std::string_view address, std::string_view domain,
                               const RecipientDomainOptions& options) {
    if (domain.empty() || domain.front() == '[') return Verdict::accept(check_name::recipient_domain);

    const MailRoute route = find_mail_route(resolver, domain);
    ReplyArgs args;
    args.address = std::string(address.substr(0, 256));
    args.domain = std::string(domain);
    Verdict v = Verdict::accept(check_name::recipient_domain);
    switch (route.kind) {
    case MailRoute::Kind::receives: break;
    case MailRoute::Kind::null_mx:
        v = Verdict::reject(check_name::recipient_domain, ReplyId::recipient_domain_null_mx, std::move(args));
        break;
    case MailRoute::Kind::nxdomain:
        args.reason = "does not exist (NXDOMAIN)";
        v = Verdict::reject(check_name::recipient_domain, ReplyId::recipient_domain_unknown, std::move(args));
        break;
    case MailRoute::Kind::no_address:
        args.reason = "has no MX, A or AAAA record";
        v = Verdict::reject(check_name::recipient_domain, ReplyId::recipient_domain_unknown, std::move(args));
        break;
    case MailRoute::Kind::trouble:
        args.name = std::string(domain) + "/" + std::string(type_name(route.trouble_type));
        args.reason = std::string(trouble_text(route.trouble_status));
        v = Verdict::tempfail(check_name::recipient_domain, ReplyId::dns_temp_failure, std::move(args));
        // Accepted, but the reply stays in the verdict so that the log says why.
        if (options.on_dns_error == DnsErrorAction::accept) v.action = v.decided = v.would = Verdict::Action::accept;
        break;
    }
    v.dns_ms = route.dns_ms;
    return v;
}

}  // namespace preflight
