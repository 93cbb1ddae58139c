// What a pre-send check decides, as plain data.
//
// A check (envelope syntax, sizes, recipients, sender domain, authentication) returns a Verdict:
// accept, or reject/tempfail with the ReplyId of the reply it wants and the named values that
// reply's text needs (ReplyArgs). No check formats SMTP text: reply_table.cpp is the one place
// that turns a ReplyId into code, enhanced code and text, the way Postfix's smtpd_check.c keeps
// every reply code in its parameters and one reply formatter.
//
// The per-check Mode (reject | tempfail | tag | off) and the global dry-run are applied afterwards
// by apply_mode(), a separate pure function, so that the checks stay ignorant of configuration
// other than their own limits.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <utility>

#include "config.hpp"  // CheckMode: the conf's vocabulary, one definition for conf and checks

namespace preflight {

// Every reply preflight can send. The code, enhanced code, temporary twin and text of each live
// in reply_table.cpp, and nowhere else.
enum class ReplyId : std::uint8_t {
    none,                      // 250 2.0.0: accept; carried by accept verdicts
    sender_syntax,             // 501 5.1.7: MAIL FROM is not an RFC 5321 reverse-path
    recipient_syntax,          // 501 5.1.3: RCPT TO is not an RFC 5321 forward-path
    address_needs_smtputf8,    // 553 5.6.7: non-ASCII address without the SMTPUTF8 parameter
    size_announced_too_big,    // 552 5.3.4: MAIL FROM SIZE= above MaxMessageSize
    size_too_big,              // 552 5.3.4: the message grew above MaxMessageSize
    too_many_recipients_temp,  // 452 4.5.3: recipient MaxRecipients+1 (client sends the rest later)
    too_many_recipients_perm,  // 550 5.5.3: the same, as a permanent refusal
    sender_domain_unknown,     // 550 5.1.8 (450 4.1.8 as tempfail): NXDOMAIN, or no MX/A/AAAA
    sender_domain_null_mx,     // 550 5.7.27: the sender domain publishes "MX 0 ." (RFC 7505)
    recipient_domain_unknown,  // 550 5.1.2 (450 4.1.2 as tempfail): NXDOMAIN, or no MX/A/AAAA
    recipient_domain_null_mx,  // 556 5.1.10: the recipient domain publishes "MX 0 ." (RFC 7505)
    spf_required_failed,       // 550 5.7.23: AuthPolicy spf (or spf-and-dkim): SPF does not pass
    spf_record_invalid,        // 550 5.7.24: the SPF record is unusable (permerror)
    dkim_required_failed,      // 550 5.7.20: DKIM required, no signature and no key published
    dkim_signature_invalid,    // 550 5.7.20: DKIM required, the domain's signature does not verify
    dkim_key_invalid,          // 550 5.7.20: DKIM required, the key record cannot be used
    auth_failed,               // 550 5.7.26: spf-or-dkim: neither passes
    auth_failed_all,           // 550 5.7.26: spf-and-dkim: both fail
    quota_exceeded_temp,       // 452 4.7.1: a sending quota is used up (QuotaCode 452)
    quota_exceeded_perm,       // 550 5.7.1: the same, as a permanent refusal (QuotaCode 550)
    quota_store_failure,       // 451 4.3.0: the quota store cannot be reached (OnQuotaStoreError tempfail)
    dmarc_record_missing,      // 550 5.7.26: no DMARC record at the From domain or its organisational domain
    dmarc_record_invalid,      // 550 5.7.26: a DMARC record that receivers ignore (bad v=, p=, adkim, aspf)
    from_domain_unaligned,     // 550 5.7.26: From aligns with neither SPF's domain nor a DKIM d=
    unsubscribe_missing,       // 550 5.7.1: bulk mail without RFC 8058 one-click unsubscribe
    unsubscribe_unsigned,      // 550 5.7.1: the unsubscribe headers are not in the DKIM signature's h=
    header_invalid,            // 550 5.6.0: headers receivers refuse (two From, no Date, bad From address...)
    plan_exceeded_temp,        // 452 4.7.1: a plan period's quota (week, month) is used up (QuotaCode 452)
    plan_exceeded_perm,        // 550 5.7.1: the same, as a permanent refusal (QuotaCode 550)
    recipient_suppressed,      // 550 5.1.1: the recipient bounced for good (suppression list)
    suppressed_by_complaint,   // 550 5.7.1: the recipient complained (suppression list)
    suppressed_by_operator,    // 550 5.7.1: the relay's operator put the recipient on the list
    suppression_unavailable,   // 451 4.3.0: the suppression store cannot be reached
    dns_temp_failure,          // 451 4.4.3: SERVFAIL, timeout, garbage; never a 5xx
    shutting_down,             // 451 4.3.2: the milter is stopping; new transactions retry later
    internal_temp_failure,     // 451 4.3.0: preflight itself could not decide
};
inline constexpr std::size_t reply_id_count = static_cast<std::size_t>(ReplyId::internal_temp_failure) + 1;

// The named values a reply template may use ({domain}, {ip}, ...). Plain strings, set by the
// checks, raw: render() sanitises each one (controls stripped, length capped, '%' doubled), so
// a check may store what it got from the client or from DNS as it is.
struct ReplyArgs {
    std::string address;      // the envelope address as the client sent it (capped by the check)
    std::string domain;       // the domain concerned, normalised
    std::string reason;       // what exactly is wrong ("label 'a-' ends with a hyphen")
    std::string size;         // bytes, decimal
    std::string limit;        // the configured limit, decimal
    std::string ip;           // egress address(es) SPF does not authorize ("192.0.2.7, 2001:db8::7")
    std::string egress;       // all egress addresses, when SPF must pass for each and passes for some
    std::string spf_hint;     // what to add to the SPF record ("include:spf.relay.example")
    std::string spf_result;   // "fail", "softfail", "none" ...
    std::string spf_reason;   // SPF explanation (from libspf2 or the domain's exp=)
    std::string selector;     // DKIM selector where our key should be published
    std::string dkim_result;  // "none", "fail", "permerror" ...
    std::string dkim_reason;  // why the DKIM signature or key failed
    std::string name;         // the DNS name and type that failed ("example.org/MX")
    std::string unit;         // what a quota counts: "recipients" or "messages"
    std::string window;       // a quota's window: "minute", "hour", "day"
    std::string subject;      // whose quota: "example.org", "user@example.org", "login alice"
    std::string retry;        // when a quota allows the next one: "3 h 12 min"
    // Message checks (checks/message/).
    std::string from_domain;  // the domain of the From header
    std::string signers;      // d= of the message's DKIM signatures ("a.example, b.example")
    std::string alignment;    // "relaxed" or "strict" (the DMARC record's adkim/aspf)
    std::string problem;      // what exactly is missing or wrong in the headers
    std::string period;       // a plan period, as a reply's first word: "Monthly", "Weekly"
    std::string used;         // what a plan period has used: "50,000"
    std::string renews;       // when a plan period renews: "2027-01-15 00:00 UTC"
    std::string since;        // when a recipient was first suppressed: "2026-11-03"
    std::string remote_mta;   // the server whose reply suppressed a recipient: "mx.example.net"
};

// The check names: the log's check= field, and the X-Preflight-<Name> header in tag mode.
namespace check_name {
inline constexpr std::string_view envelope = "envelope";
inline constexpr std::string_view size = "size";
inline constexpr std::string_view recipients = "recipients";
inline constexpr std::string_view sender_domain = "sender-domain";
inline constexpr std::string_view auth = "auth";
inline constexpr std::string_view quota = "quota";
inline constexpr std::string_view dmarc = "dmarc";
inline constexpr std::string_view alignment = "alignment";
inline constexpr std::string_view unsubscribe = "unsubscribe";
inline constexpr std::string_view headers = "headers";
inline constexpr std::string_view recipient_domain = "recipient-domain";
inline constexpr std::string_view suppression = "suppression";
}  // namespace check_name

struct Verdict {
    enum class Action : std::uint8_t {
        accept,    // go on
        reject,    // 5xx
        tempfail,  // 4xx
        tag,       // accept, and add X-Preflight-<Check>: <reply text>
    };

    // What the milter must do now (after apply_mode; dry-run makes this accept).
    Action action = Action::accept;
    ReplyId reply = ReplyId::none;
    std::string check;  // check_name::*
    ReplyArgs args;
    double dns_ms = 0;  // time spent in DNS for this decision (sum of DnsAnswer::elapsed_ms)

    // What the check itself decided; apply_mode never changes it (it keeps apply_mode idempotent
    // and tells render() whether a tagged or dry-run verdict came from a 4xx or a 5xx).
    Action decided = Action::accept;
    // What enforce mode does after the per-check mode: equals action unless dry_run.
    Action would = Action::accept;
    bool dry_run = false;  // action was turned into accept by the global dry-run

    static Verdict accept(std::string_view check) { return make(Action::accept, ReplyId::none, check, {}); }
    static Verdict reject(std::string_view check, ReplyId r, ReplyArgs a) {
        return make(Action::reject, r, check, std::move(a));
    }
    static Verdict tempfail(std::string_view check, ReplyId r, ReplyArgs a) {
        return make(Action::tempfail, r, check, std::move(a));
    }
    bool accepted() const { return action == Action::accept || action == Action::tag; }

private:
    static Verdict make(Action act, ReplyId r, std::string_view check, ReplyArgs a) {
        Verdict v;
        v.action = v.decided = v.would = act;
        v.reply = r;
        v.check = std::string(check);
        v.args = std::move(a);
        return v;
    }
};

// Maps a check's verdict through its per-check Mode (conf's CheckMode: reject as decided;
// tempfail: a 5xx becomes its 4xx twin; tag: accept and add a header; off: accept, nothing kept)
// and the global dry-run (log what would have happened, accept, add nothing). Accept verdicts
// pass unchanged. Idempotent: it works from v.decided, so applying it twice gives the same result.
Verdict apply_mode(Verdict v, CheckMode mode, bool dry_run);

std::string_view to_string(Verdict::Action a);
std::string_view to_string(ReplyId r);  // the enumerator name, for logs and tests

}  // namespace preflight
