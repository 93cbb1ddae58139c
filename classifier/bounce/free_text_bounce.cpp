#include "free_text_bounce.hpp"

#include "ascii.hpp"

#include <nlohmann/json.hpp>

#include <algorithm>
#include <array>

namespace preflight {
namespace {

constexpr std::size_t kMaxReason = 600;  // the words that matter come first; bounds rule matching time
constexpr std::size_t kMaxReasonLines = 20;

std::size_t find_nocase(std::string_view s, std::string_view needle) {
    if (needle.empty() || s.size() < needle.size()) return std::string_view::npos;
    for (std::size_t i = 0; i + needle.size() <= s.size(); ++i) {
        if (ascii::lower(s[i]) != needle[0]) continue;
        if (ascii::iequals(s.substr(i, needle.size()), needle)) return i;
    }
    return std::string_view::npos;
}

// Characters of an address's local part as bounces print them (RFC 5322 atext and dots).
bool local_char(char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || ascii::is_digit(c) ||
           std::string_view("!#$%&'*+-/=?^_`{|}~.").find(c) != std::string_view::npos;
}
bool domain_char(char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || ascii::is_digit(c) || c == '-' || c == '.' || c == '[' ||
           c == ']' || c == ':';
}

// The address whose '@' is at s[at], or empty. Sets begin/end to its extent in s.
std::string_view address_at(std::string_view s, std::size_t at, std::size_t& begin, std::size_t& end) {
    std::size_t b = at;
    while (b > 0 && local_char(s[b - 1])) --b;
    std::size_t e = at + 1;
    while (e < s.size() && domain_char(s[e])) ++e;
    // Trailing dots and colons are punctuation around the address ("<a@b>:", "a@b.").
    while (e > at + 1 && (s[e - 1] == '.' || s[e - 1] == ':' || s[e - 1] == '-')) --e;
    while (b < at && (s[b] == '.' || s[b] == '\'')) ++b;
    std::string_view domain = s.substr(at + 1, e - at - 1);
    if (b == at || domain.empty() || domain.find('.') == std::string_view::npos) return {};
    if (domain.find(':') != std::string_view::npos && domain.front() != '[') return {};
    begin = b;
    end = e;
    return s.substr(b, e - b);
}

// A reply code at s[i]: three digits, first 2-5, at a word start, followed by ' ' or '-'.
int code_at(std::string_view s, std::size_t i) {
    if (i + 4 > s.size() || s[i] < '2' || s[i] > '5' || !ascii::is_digit(s[i + 1]) || !ascii::is_digit(s[i + 2]))
        return 0;
    if (s[i + 3] != ' ' && s[i + 3] != '-') return 0;
    if (i > 0) {
        char p = s[i - 1];
        if (!(ascii::is_space(p) || p == ':' || p == '(' || p == '#' || p == '<' || p == '[' || p == '"' || p == ';' ||
              p == '='))
            return 0;
    }
    return (s[i] - '0') * 100 + (s[i + 1] - '0') * 10 + (s[i + 2] - '0');
}

// An enhanced code "C.S.D" at s[i] at a word start; returns its length, 0 if none.
std::size_t enhanced_at(std::string_view s, std::size_t i) {
    if (i + 5 > s.size() || (s[i] != '2' && s[i] != '4' && s[i] != '5') || s[i + 1] != '.') return 0;
    if (i > 0 && (ascii::is_digit(s[i - 1]) || s[i - 1] == '.' || local_char(s[i - 1])) && s[i - 1] != '#' &&
        s[i - 1] != '(' && s[i - 1] != '=')
        return 0;
    std::size_t j = i + 2, n = 0;
    while (j < s.size() && ascii::is_digit(s[j]) && n < 4) ++j, ++n;
    if (n == 0 || n > 3 || j >= s.size() || s[j] != '.') return 0;
    ++j;
    n = 0;
    while (j < s.size() && ascii::is_digit(s[j]) && n < 4) ++j, ++n;
    if (n == 0 || n > 3) return 0;
    if (j < s.size() && (ascii::is_digit(s[j]) || (s[j] == '.' && j + 1 < s.size() && ascii::is_digit(s[j + 1]))))
        return 0;
    return j - i;
}

// The value of a "Name: value" field line if line starts with name (case-insensitive).
bool field(std::string_view line, std::string_view name, std::string_view& value) {
    if (line.size() <= name.size() || line[name.size()] != ':' || !ascii::iequals(line.substr(0, name.size()), name))
        return false;
    value = ascii::trim(line.substr(name.size() + 1));
    return true;
}

// "rfc822; a@b" -> "a@b"; "dns; mx.example" -> "mx.example".
std::string strip_type(std::string_view v) {
    std::size_t semi = v.find(';');
    if (semi != std::string_view::npos && semi < 24) v = ascii::trim(v.substr(semi + 1));
    if (v.size() >= 2 && v.front() == '<' && v.back() == '>') v = v.substr(1, v.size() - 2);
    return std::string(ascii::trim(v));
}

void append_capped(std::string& out, std::string_view s) {
    s = ascii::trim(s);
    if (s.empty() || out.size() >= kMaxReason) return;
    if (!out.empty()) out.push_back(' ');
    for (char c : s.substr(0, kMaxReason - out.size())) {
        if (ascii::is_space(c)) {
            if (out.back() != ' ') out.push_back(' ');
        } else {
            out.push_back(c);
        }
    }
}

// The address a line names as a recipient, or empty: one at the line start (after a reply
// code, quote or bracket), after a recipient label ("Recipient address:"), or in RCPT TO:<>.
std::string_view recipient_on_line(std::string_view line) {
    std::string_view t = ascii::trim(line);
    if (t.empty()) return {};
    std::size_t b = 0, e = 0;
    if (std::size_t r = find_nocase(t, "rcpt to:"); r != std::string_view::npos) {
        std::string_view rest = ascii::trim(t.substr(r + 8));
        std::size_t at = rest.find('@');
        if (at != std::string_view::npos && at < 200) {
            std::string_view a = address_at(rest, at, b, e);
            if (!a.empty() && b <= 2) return a;
        }
    }
    if (t.starts_with(">>>") || t.starts_with("<<<")) t = ascii::trim(t.substr(3));
    // Sendmail's "550 5.1.1 <a@b>... User unknown", "554 <a@b>... 550 Host unknown".
    if (code_at(t, 0)) t = ascii::trim(t.substr(4));
    if (std::size_t n = enhanced_at(t, 0)) t = ascii::trim(t.substr(n));
    // A label that says the address is a recipient ("Recipient address: a@b").
    std::size_t colon = t.find(':');
    if (colon != std::string_view::npos && colon < 40 && colon + 1 < t.size()) {
        std::string label = ascii::to_lower(t.substr(0, colon));
        static constexpr std::array<std::string_view, 8> kLabels = {
            "recipient", "rcpt", "addressee", "destinat", "empf", "failed address", "address", "mailbox"};
        bool is_label = label.find('@') == std::string::npos &&
                        std::any_of(kLabels.begin(), kLabels.end(),
                                    [&](std::string_view l) { return label.find(l) != std::string::npos; }) &&
                        label.find("sender") == std::string::npos && label.find("from") == std::string::npos &&
                        label.find("reply") == std::string::npos;
        if (is_label) t = ascii::trim(t.substr(colon + 1));
    }
    while (!t.empty() && (t[0] == '<' || t[0] == '"' || t[0] == '\'' || t[0] == '(' || t[0] == '[' || t[0] == '*'))
        t.remove_prefix(1);
    std::size_t at = t.find('@');
    if (at == std::string_view::npos || at > 128) return {};
    std::string_view a = address_at(t, at, b, e);
    if (a.empty() || b != 0) return {};
    // The address must end the token: "a@b", "a@b>", "a@b:", "a@b...", "a@b on <date>".
    if (e < t.size()) {
        char c = t[e];
        if (!(ascii::is_space(c) || c == '>' || c == ':' || c == '.' || c == ',' || c == ';' || c == '"' || c == '\'' ||
              c == ')' || c == ']'))
            return {};
    }
    return a;
}

bool ignored(std::string_view a, const std::vector<std::string>& ignore) {
    std::size_t at = a.find('@');
    std::string_view local = a.substr(0, at);
    if (ascii::iequals(local, "mailer-daemon")) return true;
    return std::any_of(ignore.begin(), ignore.end(), [&](const std::string& i) { return ascii::iequals(i, a); });
}

using Json = nlohmann::json;

// The first JSON object in text, made fit for a strict parser: cut where it closes (a mail
// system may add a footer after it), raw control characters inside strings escaped (mail
// systems wrap long lines; JSON forbids them there), and nesting bounded (the parser recurses).
// Empty when there is no whole object within the bound.
std::string first_json_object(std::string_view text) {
    constexpr int kMaxDepth = 32;
    std::string out;
    int depth = 0;
    bool in_string = false, escaped = false;
    for (char c : text) {
        if (in_string) {
            if (escaped) escaped = false;
            else if (c == '\\') escaped = true;
            else if (c == '"') in_string = false;
            if (static_cast<unsigned char>(c) < 0x20) {
                static const char hex[] = "0123456789abcdef";
                out.append("\\u00").push_back(hex[(c >> 4) & 0xF]);
                out.push_back(hex[c & 0xF]);
                escaped = false;
                continue;
            }
        } else if (c == '"') {
            in_string = true;
        } else if (c == '{' || c == '[') {
            if (++depth > kMaxDepth) return {};
        } else if (c == '}' || c == ']') {
            if (--depth < 0) return {};
            if (depth == 0) {
                out.push_back(c);
                return out;
            }
        }
        out.push_back(c);
    }
    return {};
}

// The object in text, or a discarded value when it is not one.
Json parse_object(std::string_view text) {
    std::string object = first_json_object(text);
    Json j = object.empty() ? Json(Json::value_t::discarded) : Json::parse(object, nullptr, false);
    return j.is_object() ? j : Json(Json::value_t::discarded);
}

const Json* member(const Json& j, const char* key) {
    if (!j.is_object()) return nullptr;
    auto it = j.find(key);
    return it == j.end() ? nullptr : &*it;
}

// A string member's value; a number or other scalar as its JSON text; empty otherwise.
std::string str(const Json& j, const char* key) {
    const Json* v = member(j, key);
    if (!v || v->is_structured() || v->is_null()) return {};
    return v->is_string() ? v->get<std::string>() : v->dump();
}

// SES's bounceSubType in words the rules know, for a recipient without a diagnostic code.
std::string_view ses_subtype_words(std::string_view sub) {
    static constexpr std::array<std::pair<std::string_view, std::string_view>, 8> kWords = {{
        {"NoEmail", "no such mailbox"},
        {"Suppressed", "Amazon SES has suppressed sending to this address"},
        {"OnAccountSuppressionList", "on the account-level suppression list"},
        {"MailboxFull", "mailbox full"},
        {"MessageTooLarge", "message too large"},
        {"ContentRejected", "content rejected"},
        {"AttachmentRejected", "attachment rejected"},
        {"UnsubscribedRecipient", "recipient unsubscribed"},
    }};
    for (auto [name, words] : kWords)
        if (name == sub) return words;
    return {};
}

std::string first_enhanced(std::string_view s) {
    for (std::size_t i = 0; i + 5 <= s.size(); ++i)
        if (std::size_t n = enhanced_at(s, i)) return std::string(s.substr(i, n));
    return {};
}

}  // namespace

bool parse_ses_notification(std::string_view text, SesNotification& out) {
    std::size_t brace = text.find('{');
    if (brace == std::string_view::npos || text.find("Type\"") == std::string_view::npos) return false;
    const Json root = parse_object(text.substr(brace));
    if (root.is_discarded()) return false;
    // The SNS envelope carries the notification as a JSON string.
    Json inner(Json::value_t::discarded);
    if (str(root, "Type") == "Notification" && !str(root, "Message").empty()) {
        inner = parse_object(str(root, "Message"));
        if (inner.is_discarded()) return false;
    }
    const Json& n = inner.is_object() ? inner : root;
    std::string type = str(n, "notificationType");
    if (type.empty()) type = str(n, "eventType");
    out = SesNotification{};
    if (const Json* mail = member(n, "mail")) {
        const Json* common = member(*mail, "commonHeaders");
        out.message_id = common ? str(*common, "messageId") : std::string();
        if (out.message_id.empty()) out.message_id = str(*mail, "messageId");
        if (out.message_id.size() >= 2 && out.message_id.front() == '<' && out.message_id.back() == '>')
            out.message_id = out.message_id.substr(1, out.message_id.size() - 2);
    }
    auto items = [](const Json* list) { return list && list->is_array() ? *list : Json::array(); };
    if (type == "Bounce") {
        const Json* b = member(n, "bounce");
        if (!b) return false;
        out.type = SesNotification::Type::bounce;
        out.reporting_mta = strip_type(str(*b, "reportingMTA"));
        bool transient = str(*b, "bounceType") == "Transient";
        std::string_view words = ses_subtype_words(str(*b, "bounceSubType"));
        for (const Json& r : items(member(*b, "bouncedRecipients"))) {
            DsnRecipientFields f;
            f.final_recipient = strip_type(str(r, "emailAddress"));
            f.action = ascii::to_lower(str(r, "action"));
            if (f.action.empty()) f.action = "failed";
            f.status = str(r, "status");
            f.diagnostic = str(r, "diagnosticCode");
            if (f.diagnostic.empty()) f.diagnostic = std::string(words);
            if (f.status.empty() && f.diagnostic.empty()) f.status = transient ? "4.0.0" : "5.0.0";
            if (!f.final_recipient.empty()) out.recipients.push_back(std::move(f));
        }
    } else if (type == "Complaint") {
        const Json* c = member(n, "complaint");
        if (!c) return false;
        out.type = SesNotification::Type::complaint;
        for (const Json& r : items(member(*c, "complainedRecipients"))) {
            DsnRecipientFields f;
            f.final_recipient = strip_type(str(r, "emailAddress"));
            out.recipients.push_back(std::move(f));
        }
    } else if (type == "Delivery") {
        const Json* d = member(n, "delivery");
        if (!d) return false;
        out.type = SesNotification::Type::delivery;
        out.reporting_mta = strip_type(str(*d, "reportingMTA"));
        const std::string reply = str(*d, "smtpResponse");
        for (const Json& r : items(member(*d, "recipients"))) {
            if (!r.is_string()) continue;
            DsnRecipientFields f;
            f.final_recipient = strip_type(r.get<std::string>());
            f.action = "delivered";
            f.status = first_enhanced(reply);
            f.diagnostic = reply;
            out.recipients.push_back(std::move(f));
        }
    } else {
        return false;
    }
    return true;
}

std::vector<std::string> find_addresses(std::string_view s) {
    std::vector<std::string> out;
    std::size_t pos = 0;
    while ((pos = s.find('@', pos)) != std::string_view::npos) {
        std::size_t b = 0, e = 0;
        std::string_view a = address_at(s, pos, b, e);
        if (!a.empty()) out.emplace_back(a);
        pos = std::max(pos + 1, e);
    }
    return out;
}

DsnFields parse_delivery_status(std::string_view body) {
    DsnFields out;
    // Unfold into (line, field) steps: a continuation line joins the field before it.
    std::vector<std::string> lines;
    std::size_t pos = 0;
    while (pos < body.size()) {
        std::size_t nl = body.find('\n', pos);
        std::string_view line = body.substr(pos, nl == std::string_view::npos ? std::string_view::npos : nl - pos);
        pos = nl == std::string_view::npos ? body.size() : nl + 1;
        if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
        if (!line.empty() && (line[0] == ' ' || line[0] == '\t') && !lines.empty() && !lines.back().empty()) {
            lines.back().push_back(' ');
            lines.back().append(ascii::trim(line));
        } else {
            lines.emplace_back(line);
        }
    }
    DsnRecipientFields* cur = nullptr;
    bool block_open = false;  // the current recipient's block has not ended with a blank line
    // RFC 3464 lists Final-Recipient first, but some MTAs write Action, Status and
    // Diagnostic-Code before it (MessageLabs). Fields seen in a block before its first
    // recipient line wait here and go to that recipient.
    DsnRecipientFields pending;
    auto start = [&](bool final) -> DsnRecipientFields& {
        // Final- and Original-Recipient come in either order; a repeated one is the next recipient.
        bool fresh = !cur || !block_open || !(final ? cur->final_recipient : cur->original_recipient).empty();
        if (fresh) {
            out.recipients.emplace_back();
            cur = &out.recipients.back();
            if (!block_open) {
                *cur = std::move(pending);
                pending = DsnRecipientFields{};
            }
        }
        block_open = true;
        return *cur;
    };
    for (const std::string& l : lines) {
        std::string_view line = l, v;
        if (ascii::trim(line).empty()) {
            block_open = false;
            pending = DsnRecipientFields{};
            continue;
        }
        DsnRecipientFields* target = cur && block_open ? cur : &pending;
        if (field(line, "Final-Recipient", v)) {
            start(true).final_recipient = strip_type(v);
        } else if (field(line, "Original-Recipient", v)) {
            start(false).original_recipient = strip_type(v);
        } else if (field(line, "Reporting-MTA", v)) {
            if (out.reporting_mta.empty()) out.reporting_mta = strip_type(v);
        } else if (field(line, "X-Postfix-Queue-ID", v)) {
            out.queue_id = std::string(v);
        } else if (field(line, "Action", v)) {
            target->action = ascii::to_lower(ascii::trim(v.substr(0, v.find_first_of(" \t("))));
        } else if (field(line, "Status", v)) {
            target->status = std::string(v.substr(0, v.find_first_of(" \t(;")));
            std::size_t open = v.find('('), close = v.rfind(')');
            if (open != std::string_view::npos && close != std::string_view::npos && close > open)
                target->status_comment = std::string(ascii::trim(v.substr(open + 1, close - open - 1)));
        } else if (field(line, "Diagnostic-Code", v)) {
            target->diagnostic = std::string(v);
        } else if (field(line, "Remote-MTA", v)) {
            target->remote_mta = strip_type(v);
        }
    }
    // Blocks without any address are noise (a stray Action: line).
    std::erase_if(out.recipients, [](const DsnRecipientFields& r) { return r.recipient().empty(); });
    return out;
}

std::string_view cut_returned_message(std::string_view text) {
    static constexpr std::array<std::string_view, 14> kMarkers = {
        "below this line is a copy of the message",
        "this is a copy of the message",
        "original message follows",
        "----- original message",
        "------ original message",
        "--- original message",
        "unsent message follows",
        "returned message --",
        "original message headers",
        "content-type: message/rfc822",
        "content-type: text/rfc822-headers",
        "----- message header follows",
        "headers of the original message",
        "copy of the original message",
    };
    std::size_t pos = 0;
    int header_run = 0;  // consecutive lines that look like header fields
    std::size_t run_start = 0;
    while (pos < text.size()) {
        std::size_t nl = text.find('\n', pos);
        std::size_t end = nl == std::string_view::npos ? text.size() : nl;
        std::string_view line = text.substr(pos, end - pos);
        std::string_view t = ascii::trim(line);
        if (t.size() < 200) {
            std::string l = ascii::to_lower(t);
            for (std::string_view m : kMarkers)
                if (l.find(m) != std::string::npos) return text.substr(0, pos);
            // The returned message's own header block, pasted without any marker.
            bool header = !line.empty() && line[0] != ' ' && line[0] != '\t' &&
                          (ascii::istarts_with(line, "Received: ") || ascii::istarts_with(line, "Return-Path:") ||
                           ascii::istarts_with(line, "Message-ID:") || ascii::istarts_with(line, "DKIM-Signature:") ||
                           ascii::istarts_with(line, "MIME-Version:") || ascii::istarts_with(line, "X-Mailer:") ||
                           ascii::istarts_with(line, "Date:"));
            if (header) {
                if (header_run++ == 0) run_start = pos;
                if (header_run >= 2) return text.substr(0, run_start);
            } else if (!line.empty() && (line[0] == ' ' || line[0] == '\t') && header_run) {
                // a folded header line keeps the run going
            } else {
                header_run = 0;
            }
        }
        pos = end + 1;
    }
    return text;
}

FreeTextBounce parse_free_text_bounce(std::string_view text, const std::vector<std::string>& ignore) {
    FreeTextBounce out;
    std::vector<std::string_view> lines;
    for (std::size_t pos = 0; pos < text.size();) {
        std::size_t nl = text.find('\n', pos);
        std::size_t end = nl == std::string_view::npos ? text.size() : nl;
        std::string_view line = text.substr(pos, end - pos);
        if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
        lines.push_back(line);
        pos = end + 1;
    }
    std::vector<std::string> keys;  // lower-cased addresses of out.recipients
    bool seen_recipient = false;
    std::size_t block_end = 0;  // the line after the last recipient's block
    std::string_view previous;  // the last non-blank line before this one
    for (std::size_t i = 0; i < lines.size(); ++i) {
        std::string_view a = recipient_on_line(lines[i]);
        // "A message sent by\n  <sender@x>\ncould not be delivered": the address is the sender's.
        std::string_view prev = previous;
        if (!ascii::trim(lines[i]).empty()) previous = ascii::trim(lines[i]);
        while (!prev.empty() && (prev.back() == ':' || prev.back() == ' ')) prev.remove_suffix(1);
        bool sender_line = prev.size() >= 7 && ascii::iequals(prev.substr(prev.size() - 7), "sent by");
        if (a.empty() || ignored(a, ignore) || sender_line) {
            if (!seen_recipient) append_capped(out.intro, lines[i]);
            continue;
        }
        seen_recipient = true;
        std::string key = ascii::to_lower(a);
        auto it = std::find(keys.begin(), keys.end(), key);
        std::size_t idx = static_cast<std::size_t>(it - keys.begin());
        if (it == keys.end()) {
            keys.push_back(key);
            out.recipients.push_back({std::string(a), {}});
        }
        std::string& reason = out.recipients[idx].reason;
        append_capped(reason, lines[i]);
        // The lines after it up to the next recipient; a blank line followed by an unindented
        // line ends the block once it has some text (the bounce's closing words follow).
        bool have_text = ascii::trim(lines[i]).size() > a.size() + 4;
        std::size_t taken = 0;
        for (std::size_t j = i + 1; j < lines.size() && taken < kMaxReasonLines; ++j) {
            std::string_view next = recipient_on_line(lines[j]);
            if (!next.empty() && !ignored(next, ignore) && !ascii::iequals(next, a)) break;
            if (ascii::trim(lines[j]).empty()) {
                if (have_text && j + 1 < lines.size() && !lines[j + 1].empty() && !ascii::is_space(lines[j + 1][0]))
                    break;
                continue;
            }
            append_capped(reason, lines[j]);
            have_text = true;
            ++taken;
            i = j;
        }
        block_end = i + 1;
        previous = {};
    }
    if (out.recipients.empty()) {
        out.intro.clear(), append_capped(out.intro, text);
        return out;
    }
    // Gmail and others name the address first and explain below it ("Technical details of
    // permanent failure: ..."): the one recipient whose block quotes no reply takes those words.
    if (out.recipients.size() == 1 && block_end < lines.size()) {
        FreeTextRecipient& r = out.recipients.front();
        std::string_view reason = r.reason;
        bool has_code = false;
        for (std::size_t i = 0; i < reason.size() && !has_code; ++i)
            has_code = code_at(reason, i) || enhanced_at(reason, i);
        if (!has_code)
            for (std::size_t j = block_end; j < lines.size(); ++j) append_capped(r.reason, lines[j]);
    }
    return out;
}

std::string reply_from_text(std::string_view text) {
    int code = 0;
    for (std::size_t i = 0; i + 4 <= text.size(); ++i) {
        if (text[i] != '4' && text[i] != '5') continue;
        if (int c = code_at(text, i)) {
            code = c;
            break;
        }
    }
    std::string_view enh;
    for (std::size_t i = 0; i + 5 <= text.size(); ++i) {
        if (text[i] != '4' && text[i] != '5') continue;
        if (std::size_t n = enhanced_at(text, i)) {
            // Of the code's class when there is a code: "550 ... 4.4.1" mixes two replies.
            if (code && text[i] - '0' != code / 100) continue;
            enh = text.substr(i, n);
            break;
        }
    }
    std::string out;
    if (code) out.append(std::to_string(code)).push_back(' ');
    if (!enh.empty()) out.append(enh).push_back(' ');
    out.append(text);
    return out;
}

}  // namespace preflight
