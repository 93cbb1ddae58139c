// Mode mapping of verdicts (see verdict.hpp) and the names of the verdict enums.
#include "verdict.hpp"

#include <array>

namespace preflight {

Verdict apply_mode(Verdict v, CheckMode mode, bool dry_run) {
    using A = Verdict::Action;
    // Accept verdicts carry nothing to map (an accept with a reply, e.g. DNS trouble under
    // OnDnsError=accept, stays an accept: the reply is only for the log).
    if (v.decided == A::accept || v.decided == A::tag) {
        v.action = v.would = v.decided == A::tag ? A::tag : A::accept;
        v.dry_run = false;
        return v;
    }
    switch (mode) {
    case CheckMode::reject: v.would = v.decided; break;  // a tempfail (DNS trouble) stays one
    case CheckMode::tempfail: v.would = A::tempfail; break;
    case CheckMode::tag: v.would = A::tag; break;
    case CheckMode::off:
        // Off: as if the check had not run; nothing to log or tag.
        v = Verdict::accept(v.check);
        return v;
    }
    // Dry-run: the mail goes through untouched (no reply, no header); `would` tells the log.
    v.dry_run = dry_run;
    v.action = dry_run ? A::accept : v.would;
    return v;
}

std::string_view to_string(Verdict::Action a) {
    switch (a) {
    case Verdict::Action::accept: return "accept";
    case Verdict::Action::reject: return "reject";
    case Verdict::Action::tempfail: return "tempfail";
    case Verdict::Action::tag: return "tag";
    }
    return "?";
}

std::string_view to_string(ReplyId r) {
    static constexpr std::array<std::string_view, reply_id_count> names{
        "none",
        "sender_syntax",
        "recipient_syntax",
        "address_needs_smtputf8",
        "size_announced_too_big",
        "size_too_big",
        "too_many_recipients_temp",
        "too_many_recipients_perm",
        "sender_domain_unknown",
        "sender_domain_null_mx",
        "recipient_domain_unknown",
        "recipient_domain_null_mx",
        "spf_required_failed",
        "spf_record_invalid",
        "dkim_required_failed",
        "dkim_signature_invalid",
        "dkim_key_invalid",
        "auth_failed",
        "auth_failed_all",
        "quota_exceeded_temp",
        "quota_exceeded_perm",
        "quota_store_failure",
        "dmarc_record_missing",
        "dmarc_record_invalid",
        "from_domain_unaligned",
        "unsubscribe_missing",
        "unsubscribe_unsigned",
        "header_invalid",
        "plan_exceeded_temp",
        "plan_exceeded_perm",
        "recipient_suppressed",
        "suppressed_by_complaint",
        "suppressed_by_operator",
        "suppression_unavailable",
        "dns_temp_failure",
        "shutting_down",
        "internal_temp_failure",
    };
    auto i = static_cast<std::size_t>(r);
    return i < names.size() ? names[i] : std::string_view("?");
}

}  // namespace preflight
