// THE reply table of preflight-milter, and its renderer. See reply_table.hpp for the template
// language and the output guarantees. To change what a sender reads in a bounce, edit a row here.
#include "reply_table.hpp"

#include <array>

namespace preflight {
namespace {

using enum ReplyId;

// Texts say what is wrong and what the sender (or the domain's admin) can do about it.
constexpr std::array<ReplyRow, reply_id_count> table{{
    {none, 250, "2.0.0", 250, "OK"},
    {sender_syntax, 501, "5.1.7", 451,
     "Bad sender address <{address}>: {reason}; fix the envelope sender (MAIL FROM) of this message"},
    {recipient_syntax, 501, "5.1.3", 451,
     "Bad recipient address <{address}>: {reason}; correct the address and send the message again"},
    {address_needs_smtputf8, 553, "5.6.7", 450,
     "Address <{address}> contains non-ASCII characters, which needs the SMTPUTF8 extension; "
     "send with SMTPUTF8 or use an all-ASCII address (a domain can be written in its xn-- form)"},
    {size_announced_too_big, 552, "5.3.4", 452,
     "Message too large: {size} bytes, and this relay accepts at most {limit} bytes; "
     "send a smaller message, e.g. share large attachments as a link"},
    {size_too_big, 552, "5.3.4", 452,
     "Message too large: this relay accepts at most {limit} bytes ({size} bytes received "
     "when it stopped reading); send a smaller message, e.g. share large attachments as a link"},
    {too_many_recipients_temp, 452, "4.5.3", 452,
     "Too many recipients: at most {limit} per message; send the remaining recipients in another message"},
    {too_many_recipients_perm, 550, "5.5.3", 452,
     "Too many recipients: at most {limit} per message; split the recipient list and send the message "
     "again to the recipients that were refused"},
    {sender_domain_unknown, 550, "5.1.8", 450,
     "Sender address rejected: {domain} {reason}, so replies and bounces could not be delivered; "
     "use a sender address at a domain with an MX or A record"},
    {sender_domain_null_mx, 550, "5.7.27", 450,
     "Sender address rejected: {domain} publishes a null MX (RFC 7505) and accepts no mail, so replies "
     "and bounces could not be delivered; use a sender address at a domain that receives mail"},
    {recipient_domain_unknown, 550, "5.1.2", 450,
     "Recipient address <{address}> rejected: the recipient domain {domain} {reason}; "
     "check the address for a typo (the other recipients of this message are not affected)"},
    {recipient_domain_null_mx, 556, "5.1.10", 450,
     "Recipient address <{address}> rejected: the recipient domain {domain} publishes a null MX (RFC 7505) "
     "and accepts no mail; remove this recipient or ask for an address at a domain that receives mail"},
    {spf_required_failed, 550, "5.7.23", 450,
     "{domain} publishes no SPF record that allows {ip?{ip}|this relay}"
     "{egress? (SPF must pass for every address this relay sends from: {egress})}; "
     "add {spf_hint?{spf_hint}|this relay's addresses} to its SPF record"
     "\n{spf_result?SPF result: {spf_result}{spf_reason? ({spf_reason})}}"},
    {spf_record_invalid, 550, "5.7.24", 450,
     "The SPF record of {domain} cannot be evaluated{spf_reason? ({spf_reason})}; "
     "correct the record{spf_hint? and make sure it includes {spf_hint}}"},
    {dkim_required_failed, 550, "5.7.20", 450,
     "Mail from {domain} is not DKIM-signed; "
     "{selector?publish the DKIM key at {selector}._domainkey.{domain}|sign it with a DKIM key published under {domain}}"},
    {dkim_signature_invalid, 550, "5.7.20", 450,
     "The DKIM signature of {domain} does not verify{dkim_reason? ({dkim_reason})}; check that the key "
     "published in DNS matches the signing key and that nothing alters the message after signing"},
    {dkim_key_invalid, 550, "5.7.20", 450,
     "The DKIM key record {selector?{selector}._domainkey.{domain}|of {domain}} cannot be used"
     "{dkim_reason? ({dkim_reason})}; publish a valid DKIM key record"},
    {auth_failed, 550, "5.7.26", 450,
     "{domain} publishes no SPF record that allows {ip?{ip}|this relay}"
     "{egress? (SPF must pass for every address this relay sends from: {egress})} and "
     "{dkim_reason?its DKIM signature does not verify ({dkim_reason})|its mail is not DKIM-signed}; "
     "add {spf_hint?{spf_hint}|this relay's addresses} to its SPF record or "
     "{selector?publish the DKIM key at {selector}._domainkey.{domain}|sign its mail with a DKIM key published under {domain}}"
     "\n{spf_result?SPF result: {spf_result}{spf_reason? ({spf_reason})}}"},
    {auth_failed_all, 550, "5.7.26", 450,
     "Mail from {domain} must pass both SPF and DKIM, but {domain} publishes no SPF record that allows "
     "{ip?{ip}|this relay}{egress? (SPF must pass for every address this relay sends from: {egress})} and "
     "{dkim_reason?its DKIM signature does not verify ({dkim_reason})|its mail is not DKIM-signed}; "
     "add {spf_hint?{spf_hint}|this relay's addresses} to its SPF record and "
     "{selector?publish the DKIM key at {selector}._domainkey.{domain}|sign its mail with a DKIM key published under {domain}}"
     "\n{spf_result?SPF result: {spf_result}{spf_reason? ({spf_reason})}}"},
    {quota_exceeded_temp, 452, "4.7.1", 452,
     "Sending quota of {limit} {unit} per {window} for {subject} reached; it resets in {retry}; "
     "send the remaining recipients later"},
    {quota_exceeded_perm, 550, "5.7.1", 452,
     "Sending quota of {limit} {unit} per {window} for {subject} reached; it resets in {retry}; "
     "send the message again to the refused recipients after that"},
    {quota_store_failure, 451, "4.3.0", 451,
     // The reason (the store's error: its host, port, user) goes to the log only.
     "Sending quota cannot be checked at the moment; please try again later"},
    {dmarc_record_missing, 550, "5.7.26", 450,
     "The From domain {from_domain} publishes no DMARC record (none at {name}); Gmail, Yahoo and Microsoft "
     "refuse bulk mail without one; publish one at the organisational domain, e.g. "
     "_dmarc.{domain} TXT \"v=DMARC1; p=none; rua=mailto:dmarc-reports@{domain}\""},
    {dmarc_record_invalid, 550, "5.7.26", 450,
     "The DMARC record at {name} is not valid ({reason}), so receivers treat {from_domain} as having none; "
     "correct it, e.g. {name} TXT \"v=DMARC1; p=none; rua=mailto:dmarc-reports@{domain}\""},
    {from_domain_unaligned, 550, "5.7.26", 450,
     "The From domain {from_domain} is aligned ({alignment}, per its DMARC record) neither with the envelope "
     "sender domain {domain}{spf_result? (SPF {spf_result})} nor with a verified DKIM signature"
     "{signers? (signed by {signers})}, so DMARC fails at the receiver; send with an envelope sender at "
     "{from_domain} whose SPF allows this relay, or sign with d={from_domain}"
     "{selector? (publish this relay's DKIM key at {selector}._domainkey.{from_domain})}"},
    {unsubscribe_missing, 550, "5.7.1", 450,
     "Bulk mail ({reason}) must offer one-click unsubscribe (RFC 8058), which Gmail, Yahoo and Microsoft "
     "require, but {problem}; add List-Unsubscribe: <https://...> with an https URI and "
     "List-Unsubscribe-Post: List-Unsubscribe=One-Click"},
    {unsubscribe_unsigned, 550, "5.7.1", 450,
     "Bulk mail must have its one-click unsubscribe headers DKIM-signed (RFC 8058), but the DKIM signature "
     "{signers?of {signers} }does not cover {problem}; add {problem} to the signed headers (h=) of the signature"},
    {header_invalid, 550, "5.6.0", 450,
     "The message headers are not valid (RFC 5322): {problem}; receivers such as Gmail refuse such messages; "
     "fix the headers the sending program writes"},
    {plan_exceeded_temp, 452, "4.7.1", 452,
     "{period} plan limit of {limit} {unit} reached for {subject} ({used} used); it renews on {renews}; "
     "upgrade the plan or wait"},
    {plan_exceeded_perm, 550, "5.7.1", 452,
     "{period} plan limit of {limit} {unit} reached for {subject} ({used} used); it renews on {renews}; "
     "upgrade the plan or send the message again to the refused recipients after that"},
    {recipient_suppressed, 550, "5.1.1", 450,
     "<{address}> is suppressed for {subject} since {since}: the last delivery failed with \"{reason}\""
     "{remote_mta? ({remote_mta})}; remove it from your list"},
    {suppressed_by_complaint, 550, "5.7.1", 450,
     "<{address}> is suppressed for {subject} since {since}: its owner reported a message as spam"
     "{remote_mta? (report from {remote_mta})}; remove it from your list"},
    {suppressed_by_operator, 550, "5.7.1", 450,
     "<{address}> is suppressed for {subject} since {since}{reason?: {reason}}; remove it from your list, "
     "or ask this relay's operator to remove it from the suppression list"},
    {suppression_unavailable, 451, "4.3.0", 451,
     "Suppression list cannot be checked at the moment; please try again later"},
    {dns_temp_failure, 451, "4.4.3", 451,
     "DNS lookup {name?of {name} }failed temporarily{reason? ({reason})}; please try again later"
     "{domain?; if this persists, check the nameservers of {domain}}"},
    {shutting_down, 451, "4.3.2", 451,
     "This relay is restarting its checks and takes no new messages for a moment; please try again shortly"},
    {internal_temp_failure, 451, "4.3.0", 451, "Temporary local problem{reason? ({reason})}; please try again later"},
}};

// The table is indexed by ReplyId; a row out of place would give the wrong reply.
constexpr bool rows_in_order() {
    for (std::size_t i = 0; i < table.size(); ++i)
        if (static_cast<std::size_t>(table[i].id) != i) return false;
    return true;
}
static_assert(rows_in_order(), "reply table rows must be in ReplyId order");

// ---- argument lookup and sanitising --------------------------------------------------------

const std::string* arg_value(const ReplyArgs& a, std::string_view name) {
    if (name == "address") return &a.address;
    if (name == "domain") return &a.domain;
    if (name == "reason") return &a.reason;
    if (name == "size") return &a.size;
    if (name == "limit") return &a.limit;
    if (name == "ip") return &a.ip;
    if (name == "egress") return &a.egress;
    if (name == "spf_hint") return &a.spf_hint;
    if (name == "spf_result") return &a.spf_result;
    if (name == "spf_reason") return &a.spf_reason;
    if (name == "selector") return &a.selector;
    if (name == "dkim_result") return &a.dkim_result;
    if (name == "dkim_reason") return &a.dkim_reason;
    if (name == "name") return &a.name;
    if (name == "unit") return &a.unit;
    if (name == "window") return &a.window;
    if (name == "subject") return &a.subject;
    if (name == "retry") return &a.retry;
    if (name == "from_domain") return &a.from_domain;
    if (name == "signers") return &a.signers;
    if (name == "alignment") return &a.alignment;
    if (name == "problem") return &a.problem;
    if (name == "period") return &a.period;
    if (name == "used") return &a.used;
    if (name == "renews") return &a.renews;
    if (name == "since") return &a.since;
    if (name == "remote_mta") return &a.remote_mta;
    return nullptr;
}

// Values come from clients and from DNS: drop controls (CR/LF would end the reply line, NUL
// truncates C strings), show non-ASCII as '?' (replies are ASCII; Postfix does the same), cap.
void append_sanitised(std::string& out, std::string_view v, std::size_t cap) {
    std::size_t added = 0;
    for (unsigned char c : v) {
        if (added >= cap) {
            out += "...";
            return;
        }
        if (c == '\t') c = ' ';
        if (c < 0x20 || c == 0x7f) continue;
        out += c >= 0x80 ? '?' : static_cast<char>(c);
        ++added;
    }
}

bool is_name_char(char c) { return (c >= 'a' && c <= 'z') || c == '_'; }

struct Expander {
    const ReplyArgs& args;
    std::vector<std::string>* missing = nullptr;   // names used with an empty value
    std::vector<std::string>* problems = nullptr;  // template errors

    // Position just after the '}' matching the '{' at i, or npos.
    static std::size_t match_close(std::string_view t, std::size_t i) {
        int depth = 0;
        for (std::size_t j = i; j < t.size(); ++j) {
            if (t[j] == '{') ++depth;
            else if (t[j] == '}' && --depth == 0) return j + 1;
        }
        return std::string_view::npos;
    }

    // Splits "then|else" at the '|' outside nested braces.
    static std::pair<std::string_view, std::string_view> split_alt(std::string_view s) {
        int depth = 0;
        for (std::size_t j = 0; j < s.size(); ++j) {
            if (s[j] == '{') ++depth;
            else if (s[j] == '}') --depth;
            else if (s[j] == '|' && depth == 0) return {s.substr(0, j), s.substr(j + 1)};
        }
        return {s, {}};
    }

    void problem(std::string p) {
        if (problems) problems->push_back(std::move(p));
    }

    void expand(std::string_view t, std::string& out) {
        std::size_t i = 0;
        while (i < t.size()) {
            std::size_t open = t.find_first_of("{}", i);
            if (open == std::string_view::npos) {
                out.append(t.substr(i));
                return;
            }
            out.append(t.substr(i, open - i));
            if (t[open] == '}') {
                problem("unbalanced '}'");
                out += '}';
                i = open + 1;
                continue;
            }
            std::size_t end = match_close(t, open);
            if (end == std::string_view::npos) {
                problem("unbalanced '{'");
                out.append(t.substr(open));
                return;
            }
            std::string_view inner = t.substr(open + 1, end - open - 2);
            std::size_t k = 0;
            while (k < inner.size() && is_name_char(inner[k])) ++k;
            std::string_view name = inner.substr(0, k);
            const std::string* value = arg_value(args, name);
            if (!value) {
                problem("unknown placeholder '" + std::string(name) + "'");
                value = &empty_;
            }
            if (k == inner.size()) {
                if (value->empty() && missing) missing->emplace_back(name);
                append_sanitised(out, *value, max_arg_length);
            } else if (inner[k] == '?') {
                auto [then_part, else_part] = split_alt(inner.substr(k + 1));
                // Checking a template walks both branches so that every name is validated.
                if (problems) {
                    std::string scratch;
                    expand(value->empty() ? then_part : else_part, scratch);
                }
                expand(value->empty() ? else_part : then_part, out);
            } else {
                problem("bad placeholder '{" + std::string(inner) + "}'");
            }
            i = end;
        }
    }

    inline static const std::string empty_;
};

bool temp_reply(const Verdict& v) {
    using A = Verdict::Action;
    return v.would == A::tempfail || v.decided == A::tempfail;
}

// Splits at '\n', drops empty lines, wraps at spaces to max_line_text, caps the line count.
std::vector<std::string> to_lines(std::string_view text, std::size_t max_lines = max_reply_lines) {  // reply_lines()
    std::vector<std::string> lines;
    auto push = [&](std::string_view l) {
        while (!l.empty() && l.front() == ' ') l.remove_prefix(1);
        while (!l.empty() && l.back() == ' ') l.remove_suffix(1);
        if (!l.empty()) lines.emplace_back(l);
    };
    std::size_t start = 0;
    while (start <= text.size()) {
        std::size_t nl = text.find('\n', start);
        std::string_view line = text.substr(start, nl == std::string_view::npos ? nl : nl - start);
        while (line.size() > max_line_text) {
            std::size_t cut = line.rfind(' ', max_line_text);
            if (cut == std::string_view::npos || cut == 0) cut = max_line_text;  // one long word: hard cut
            push(line.substr(0, cut));
            line.remove_prefix(cut);
        }
        push(line);
        if (nl == std::string_view::npos) break;
        start = nl + 1;
    }
    if (lines.size() > max_lines) {
        lines.resize(max_lines);
        std::string& last = lines.back();
        if (last.size() + 4 > max_line_text) last.resize(max_line_text - 4);
        last += " ...";
    }
    return lines;
}

std::string expand_text(const Verdict& v) {
    Expander e{v.args};
    std::string out;
    e.expand(reply_row(v.reply).text, out);
    return out;
}

}  // namespace

std::span<const ReplyRow> reply_table() { return table; }

std::vector<std::string> reply_lines(std::string_view text) { return to_lines(text); }

const ReplyRow& reply_row(ReplyId id) {
    auto i = static_cast<std::size_t>(id);
    return i < table.size() ? table[i] : table[static_cast<std::size_t>(ReplyId::internal_temp_failure)];
}

bool reply_shows(ReplyId id, std::string_view arg) {
    const std::string_view text = reply_row(id).text;
    for (std::size_t at = text.find(arg); at != std::string_view::npos; at = text.find(arg, at + 1)) {
        const std::size_t end = at + arg.size();
        if (at > 0 && text[at - 1] == '{' && end < text.size() && (text[end] == '}' || text[end] == '?')) return true;
    }
    return false;
}

std::string temp_enhanced(std::string_view enhanced) {
    std::string s(enhanced);
    if (!s.empty() && s[0] == '5') s[0] = '4';
    return s;
}

int reply_code(const Verdict& v) {
    const ReplyRow& row = reply_row(v.reply);
    return temp_reply(v) && row.code >= 500 ? row.temp_code : row.code;
}

SmtpReply render(const Verdict& v) {
    const ReplyRow& row = reply_row(v.reply);
    SmtpReply r;
    bool temp = temp_reply(v) && row.code >= 500;
    r.code = reply_code(v);
    r.enhanced = temp ? temp_enhanced(row.enhanced) : std::string(row.enhanced);
    // A refusal keeps its last line for the marker, which says who refused.
    const bool refusal = r.code >= 400;
    r.lines = to_lines(expand_text(v), refusal ? max_reply_lines - 1 : max_reply_lines);
    if (r.lines.empty()) r.lines.emplace_back(reply_row(v.reply).id == ReplyId::none ? "OK" : "Rejected");
    if (refusal) r.lines.emplace_back(refusal_marker);
    for (std::string& l : r.lines) {
        std::string doubled;
        doubled.reserve(l.size() + 8);
        for (char c : l) {
            doubled += c;
            if (c == '%') doubled += '%';
        }
        l = std::move(doubled);
    }
    return r;
}

std::string reply_text(const SmtpReply& r) {
    std::string out = std::to_string(r.code) + " " + r.enhanced;
    for (const std::string& l : r.lines) {
        out += ' ';
        for (std::size_t i = 0; i < l.size(); ++i) {
            out += l[i];
            if (l[i] == '%' && i + 1 < l.size() && l[i + 1] == '%') ++i;  // undo the doubling
        }
    }
    return out;
}

TagHeader tag_header(const Verdict& v) {
    TagHeader h;
    // "sender-domain" -> "X-Preflight-Sender-Domain"; only letters, digits and '-' survive.
    h.name = "X-Preflight-";
    bool start = true;
    for (char c : v.check) {
        bool alnum = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9');
        if (!alnum) {
            if (!start) h.name += '-';
            start = true;
            continue;
        }
        if (start && c >= 'a' && c <= 'z') c = static_cast<char>(c - 'a' + 'A');
        h.name += c;
        start = false;
    }
    if (!h.name.empty() && h.name.back() == '-') h.name.pop_back();
    if (h.name == "X-Preflight") h.name = "X-Preflight-Check";

    // The value: the reply as the sender would have seen it, in one logical line.
    const ReplyRow& row = reply_row(v.reply);
    bool temp = temp_reply(v) && row.code >= 500;
    std::string flat = std::to_string(temp ? row.temp_code : row.code) + " " +
                       (temp ? temp_enhanced(row.enhanced) : std::string(row.enhanced));
    for (const std::string& l : to_lines(expand_text(v))) flat += " " + l;
    if (flat.size() > max_header_value) flat = flat.substr(0, max_header_value - 3) + "...";

    // Fold at spaces to keep physical lines near 78 octets; a word longer than that stays whole
    // (RFC 5322 allows up to 998, and the value is capped far below).
    constexpr std::size_t width = 78;
    std::size_t line_len = h.name.size() + 2;
    std::size_t i = 0;
    while (i < flat.size()) {
        std::size_t sp = flat.find(' ', i);
        std::string_view word = std::string_view(flat).substr(i, sp == std::string::npos ? sp : sp - i);
        if (!h.value.empty()) {
            if (line_len + 1 + word.size() > width) {
                h.value += "\n\t";
                line_len = 8;
            } else {
                h.value += ' ';
                ++line_len;
            }
        }
        h.value += word;
        line_len += word.size();
        if (sp == std::string::npos) break;
        i = sp + 1;
        while (i < flat.size() && flat[i] == ' ') ++i;
    }
    return h;
}

std::vector<std::string> template_problems(std::string_view text) {
    ReplyArgs none_set;
    std::vector<std::string> problems;
    Expander e{none_set, nullptr, &problems};
    std::string out;
    e.expand(text, out);
    return problems;
}

std::vector<std::string> missing_args(const Verdict& v) {
    std::vector<std::string> missing;
    Expander e{v.args, &missing, nullptr};
    std::string out;
    e.expand(reply_row(v.reply).text, out);
    return missing;
}

}  // namespace preflight
