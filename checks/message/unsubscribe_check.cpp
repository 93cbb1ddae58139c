// One-click unsubscribe (see unsubscribe_check.hpp).
#include "unsubscribe_check.hpp"

#include "ascii.hpp"

#include <algorithm>
#include <string>

namespace preflight {
namespace {

// Why this message is bulk mail, for the reply; "" when it is not.
std::string bulk_reason(const MessageHeaders& h, bool bulk_by_conf) {
    for (const std::string& p : h.values(Field::precedence)) {
        std::string_view v = ascii::trim(p);
        if (ascii::iequals(v, "bulk") || ascii::iequals(v, "list")) return "Precedence: " + ascii::to_lower(v);
    }
    if (h.count(Field::list_id) > 0) return "it has a List-Id header";
    if (bulk_by_conf) return "Bulk yes for its sender domain";
    return {};
}

// RFC 2369: a comma-separated list of URIs in angle brackets; one must be https with a host.
bool has_https_uri(std::string_view v) {
    for (std::size_t open = v.find('<'); open != std::string_view::npos; open = v.find('<', open + 1)) {
        std::size_t close = v.find('>', open);
        if (close == std::string_view::npos) return false;
        std::string_view uri = ascii::trim(v.substr(open + 1, close - open - 1));
        if (ascii::istarts_with(uri, "https://") && uri.size() > 8 && uri[8] != '/') return true;
    }
    return false;
}

// "" when both headers are there as RFC 8058 wants them, else what is missing.
std::string header_problem(const MessageHeaders& h) {
    if (h.count(Field::list_unsubscribe) == 0) return "it has no List-Unsubscribe header";
    const auto& lu = h.values(Field::list_unsubscribe);
    if (std::none_of(lu.begin(), lu.end(), [](const std::string& v) { return has_https_uri(v); }))
        return "its List-Unsubscribe header has no https URI";
    if (h.count(Field::list_unsubscribe_post) == 0) return "it has no List-Unsubscribe-Post header";
    const std::string& post = *h.first(Field::list_unsubscribe_post);
    if (h.count(Field::list_unsubscribe_post) > 1 || ascii::trim(post) != "List-Unsubscribe=One-Click")
        return "its List-Unsubscribe-Post header is not exactly List-Unsubscribe=One-Click";
    return {};
}

bool signs(const DkimSignatureInfo& s, std::string_view field) {
    return std::find(s.signed_headers.begin(), s.signed_headers.end(), field) != s.signed_headers.end();
}

}  // namespace

Verdict check_one_click_unsubscribe(const MessageHeaders& h, bool bulk_by_conf,
                                    const std::vector<DkimSignatureInfo>& signatures) {
    ReplyArgs a;
    a.reason = bulk_reason(h, bulk_by_conf);
    if (a.reason.empty()) return Verdict::accept(check_name::unsubscribe);
    a.problem = header_problem(h);
    if (!a.problem.empty()) return Verdict::reject(check_name::unsubscribe, ReplyId::unsubscribe_missing, std::move(a));
    if (signatures.empty()) return Verdict::accept(check_name::unsubscribe);
    // The signature closest to covering both is the one the reply names.
    const DkimSignatureInfo* best = &signatures.front();
    for (const DkimSignatureInfo& s : signatures) {
        const bool lu = signs(s, "list-unsubscribe"), post = signs(s, "list-unsubscribe-post");
        if (lu && post) return Verdict::accept(check_name::unsubscribe);
        if (lu || post) best = &s;
    }
    const bool lu = signs(*best, "list-unsubscribe"), post = signs(*best, "list-unsubscribe-post");
    a.signers = best->domain;
    a.problem = !lu && !post ? "List-Unsubscribe and List-Unsubscribe-Post"
                : !lu        ? "List-Unsubscribe"
                             : "List-Unsubscribe-Post";
    a.reason.clear();
    return Verdict::reject(check_name::unsubscribe, ReplyId::unsubscribe_unsigned, std::move(a));
}

}  // namespace preflight
