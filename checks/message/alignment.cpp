// DMARC identifier alignment (see alignment.hpp).
#include "alignment.hpp"

namespace preflight {
namespace {

std::string alignment_words(const DmarcRecord& r) {
    if (r.strict_dkim == r.strict_spf) return r.strict_dkim ? "strict" : "relaxed";
    return std::string("adkim=") + (r.strict_dkim ? "s" : "r") + ", aspf=" + (r.strict_spf ? "s" : "r");
}

std::string signer_list(const std::vector<DkimSignatureInfo>& sigs) {
    std::string out;
    for (const DkimSignatureInfo& s : sigs) {
        if (!out.empty()) out += ", ";
        out += s.domain.empty() ? std::string("?") : s.domain;
        if (!s.verified) out += " (does not verify)";
    }
    return out;
}

}  // namespace

Verdict check_alignment(const AlignmentInputs& in) {
    const bool spf_aligned = domains_aligned(in.envelope_domain, in.from_domain, in.record.strict_spf);
    bool dns_trouble = false;
    for (const DkimSignatureInfo& s : in.signatures)
        if (s.verified && domains_aligned(s.domain, in.from_domain, in.record.strict_dkim))
            return Verdict::accept(check_name::alignment);
    if (in.published && domains_aligned(in.published_domain, in.from_domain, in.record.strict_dkim)) {
        if (in.published->result == DkimResult::key_published) return Verdict::accept(check_name::alignment);
        dns_trouble = in.published->result == DkimResult::temperror;
    }
    if (spf_aligned && in.spf) {
        if (in.spf->result == SpfResult::pass) return Verdict::accept(check_name::alignment);
        dns_trouble = dns_trouble || in.spf->result == SpfResult::temperror;
    }
    ReplyArgs a;
    a.from_domain = in.from_domain;
    a.domain = in.envelope_domain;
    if (dns_trouble) {
        a.name = in.spf && in.spf->result == SpfResult::temperror ? "the SPF record of " + in.envelope_domain
                                                                  : "the DKIM key of " + in.published_domain;
        a.reason = in.spf && in.spf->result == SpfResult::temperror ? in.spf->explanation : in.published->explanation;
        return Verdict::tempfail(check_name::alignment, ReplyId::dns_temp_failure, std::move(a));
    }
    a.alignment = alignment_words(in.record);
    if (in.spf && spf_aligned) a.spf_result = std::string(to_string(in.spf->result));
    else if (!spf_aligned) a.spf_result = "not aligned";
    a.signers = signer_list(in.signatures);
    if (in.published) a.selector = in.selector;
    return Verdict::reject(check_name::alignment, ReplyId::from_domain_unaligned, std::move(a));
}

}  // namespace preflight
