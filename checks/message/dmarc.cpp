// DMARC record discovery and syntax (see dmarc.hpp).
#include "dmarc.hpp"

#include "ascii.hpp"
#include "dns_name.hpp"
#include "tag_list.hpp"

#include <libpsl.h>

#include <algorithm>
#include <memory>
#include <vector>

namespace preflight {
namespace {

struct PslFree {
    void operator()(psl_ctx_t* p) const { psl_free(p); }  // a no-op for the built-in list
};

const psl_ctx_t* public_suffix_list() {
    static const std::unique_ptr<psl_ctx_t, PslFree> latest(psl_latest(nullptr));
    return latest ? latest.get() : psl_builtin();
}

bool dns_trouble(DnsStatus s) {
    return s == DnsStatus::servfail || s == DnsStatus::timeout || s == DnsStatus::bad_answer;
}

bool is_policy(std::string_view v) {
    return ascii::iequals(v, "none") || ascii::iequals(v, "quarantine") || ascii::iequals(v, "reject");
}

// One of the tags a record may carry; "" when its value is fine.
std::string tag_problem(const Tag& t, DmarcRecord& r, bool& have_p) {
    auto bad = [&](std::string_view allowed) {
        return t.name + "=" + std::string(t.value.substr(0, 40)) + " is not " + std::string(allowed);
    };
    if (t.name == "p" || t.name == "sp") {
        if (!is_policy(t.value)) return bad("none, quarantine or reject");
        if (t.name == "p") {
            have_p = true;
            r.policy = ascii::to_lower(t.value);
        }
    } else if (t.name == "adkim" || t.name == "aspf") {
        if (!ascii::iequals(t.value, "r") && !ascii::iequals(t.value, "s")) return bad("r or s");
        (t.name == "adkim" ? r.strict_dkim : r.strict_spf) = ascii::iequals(t.value, "s");
    } else if (t.name == "pct") {
        bool digits = !t.value.empty() && t.value.size() <= 3 &&
                      std::all_of(t.value.begin(), t.value.end(), [](char c) { return ascii::is_digit(c); });
        if (!digits || std::stoi(std::string(t.value)) > 100) return bad("a percentage 0..100");
    } else if (t.name == "v") {
        return "v= may only be the first tag";
    }
    return {};  // other tags (rua, ruf, fo, rf, ri) do not change what a sender must publish
}

// Is this TXT meant as a DMARC record (its first tag v=...)? Those that are not are ignored.
bool looks_like_dmarc(std::string_view txt) {
    std::string_view t = ascii::trim(txt);
    if (t.empty() || (t[0] != 'v' && t[0] != 'V')) return false;
    t = ascii::trim(t.substr(1));
    return !t.empty() && t[0] == '=';
}

// The records at one name: found, missing (none there) or invalid; DNS trouble as dns_error.
DmarcLookup::Status records_at(Resolver& resolver, const std::string& name, DmarcLookup& out) {
    auto a = resolver.query(name, rrtype::TXT);
    if (!a) a = std::make_shared<const DnsAnswer>();
    out.dns_ms += a->elapsed_ms;
    if (dns_trouble(a->status)) {
        out.error = std::string(trouble_text(a->status));
        out.dns_name = name + "/TXT";
        return DmarcLookup::Status::dns_error;
    }
    std::vector<std::string_view> dmarc;
    if (a->status == DnsStatus::ok)
        for (const std::string& txt : a->records)
            if (looks_like_dmarc(txt)) dmarc.push_back(txt);
    if (dmarc.empty()) return DmarcLookup::Status::missing;
    out.name = name;
    if (dmarc.size() > 1) {
        out.error = "more than one DMARC record; receivers then apply none";
        return DmarcLookup::Status::invalid;
    }
    DmarcParse p = parse_dmarc_record(dmarc.front());
    if (!p.error.empty()) {
        out.error = std::move(p.error);
        return DmarcLookup::Status::invalid;
    }
    out.record = p.record;
    return DmarcLookup::Status::found;
}

}  // namespace

std::string organizational_domain(std::string_view domain) {
    std::string d = normal_domain(domain);
    if (d.empty()) return d;
    const char* reg = psl_registrable_domain(public_suffix_list(), d.c_str());
    return reg ? std::string(reg) : d;
}

bool domains_aligned(std::string_view a, std::string_view b, bool strict) {
    std::string x = normal_domain(a), y = normal_domain(b);
    if (x.empty() || y.empty()) return false;
    if (x == y) return true;
    return !strict && organizational_domain(x) == organizational_domain(y);
}

DmarcParse parse_dmarc_record(std::string_view txt) {
    DmarcParse out;
    std::vector<Tag> tags = split_tags(txt, out.error);
    if (!out.error.empty()) return out;
    if (tags.empty() || tags.front().name != "v") {
        out.error = "v=DMARC1 must be the first tag";
        return out;
    }
    if (tags.front().value != "DMARC1") {
        out.error = "v=" + std::string(tags.front().value.substr(0, 20)) + " is not v=DMARC1";
        return out;
    }
    bool have_p = false;
    for (std::size_t i = 1; i < tags.size(); ++i) {
        out.error = tag_problem(tags[i], out.record, have_p);
        if (!out.error.empty()) return out;
    }
    if (!have_p) out.error = "no p= tag (p=none, p=quarantine or p=reject)";
    return out;
}

DmarcLookup lookup_dmarc(Resolver& resolver, std::string_view from_domain) {
    DmarcLookup out;
    out.from_domain = normal_domain(from_domain);
    out.org_domain = organizational_domain(out.from_domain);
    const std::string first = "_dmarc." + out.from_domain;
    out.status = records_at(resolver, first, out);
    if (out.status != DmarcLookup::Status::missing) return out;
    out.name = first;
    if (out.org_domain == out.from_domain) return out;
    const std::string org = "_dmarc." + out.org_domain;
    out.status = records_at(resolver, org, out);
    if (out.status == DmarcLookup::Status::missing) out.name = first + " or " + org;
    return out;
}

Verdict check_dmarc_record(const DmarcLookup& l, DnsErrorAction on_dns_error) {
    ReplyArgs a;
    a.from_domain = l.from_domain;
    a.domain = l.org_domain;
    a.name = l.name;
    Verdict v = Verdict::accept(check_name::dmarc);
    switch (l.status) {
    case DmarcLookup::Status::found: break;
    case DmarcLookup::Status::missing:
        v = Verdict::reject(check_name::dmarc, ReplyId::dmarc_record_missing, std::move(a));
        break;
    case DmarcLookup::Status::invalid:
        a.reason = l.error;
        v = Verdict::reject(check_name::dmarc, ReplyId::dmarc_record_invalid, std::move(a));
        break;
    case DmarcLookup::Status::dns_error:
        a.name = l.dns_name;
        a.reason = l.error;
        a.domain = l.from_domain;
        v = Verdict::tempfail(check_name::dmarc, ReplyId::dns_temp_failure, std::move(a));
        // Accepted, but the reply stays in the verdict so that the log says why.
        if (on_dns_error == DnsErrorAction::accept) v.action = v.decided = v.would = Verdict::Action::accept;
        break;
    }
    v.dns_ms = l.dns_ms;
    return v;
}

}  // namespace preflight
