// Header fields of a message and their RFC 5322 syntax (see message_headers.hpp).
#include "message_headers.hpp"

#include "ascii.hpp"

#include <algorithm>

namespace preflight {
namespace {

constexpr std::array<std::string_view, field_count> kNames{
    "From",
    "Sender",
    "Reply-To",
    "To",
    "Cc",
    "Bcc",
    "Date",
    "Message-ID",
    "In-Reply-To",
    "References",
    "Subject",
    "List-Id",
    "List-Unsubscribe",
    "List-Unsubscribe-Post",
    "Precedence",
};

// ---- RFC 5322 lexical tokens -----------------------------------------------------------------
struct Token {
    enum class Kind { atom, quoted, literal, special } kind;
    std::string_view text;  // atom text, quoted string or literal with delimiters, the special
};

bool is_atext(unsigned char c) {
    if (c >= 0x80) return true;  // UTF-8 (RFC 6532)
    if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9')) return true;
    return std::string_view("!#$%&'*+-/=?^_`{|}~").find(static_cast<char>(c)) != std::string_view::npos;
}

// Skips a comment starting at s[i] == '('; false when it does not close.
bool skip_comment(std::string_view s, std::size_t& i) {
    int depth = 0;
    for (; i < s.size(); ++i) {
        if (s[i] == '\\') ++i;
        else if (s[i] == '(') ++depth;
        else if (s[i] == ')' && --depth == 0) {
            ++i;
            return true;
        }
    }
    return false;
}

// Ends a delimited token (quoted string, domain literal) starting at s[i]; npos when it does not.
std::size_t delimited_end(std::string_view s, std::size_t i, char close) {
    for (std::size_t j = i + 1; j < s.size(); ++j) {
        if (s[j] == '\\') ++j;
        else if (s[j] == close) return j + 1;
    }
    return std::string_view::npos;
}

// The value as tokens, comments and folding whitespace dropped; error says why when it fails.
std::vector<Token> tokenize(std::string_view s, std::string& error) {
    std::vector<Token> out;
    std::size_t i = 0;
    while (i < s.size()) {
        const unsigned char c = static_cast<unsigned char>(s[i]);
        if (ascii::is_space(static_cast<char>(c))) {
            ++i;
        } else if (c == '(') {
            if (!skip_comment(s, i)) {
                error = "a comment '(' is not closed";
                return {};
            }
        } else if (c == '"' || c == '[') {
            std::size_t end = delimited_end(s, i, c == '"' ? '"' : ']');
            if (end == std::string_view::npos) {
                error = c == '"' ? "a quoted string is not closed" : "a domain literal '[' is not closed";
                return {};
            }
            out.push_back({c == '"' ? Token::Kind::quoted : Token::Kind::literal, s.substr(i, end - i)});
            i = end;
        } else if (is_atext(c)) {
            std::size_t j = i;
            while (j < s.size() && is_atext(static_cast<unsigned char>(s[j]))) ++j;
            out.push_back({Token::Kind::atom, s.substr(i, j - i)});
            i = j;
        } else if (std::string_view("<>@,:;.").find(static_cast<char>(c)) != std::string_view::npos) {
            out.push_back({Token::Kind::special, s.substr(i, 1)});
            ++i;
        } else {
            error = c < 0x20 || c == 0x7f ? std::string("a control character")
                                          : "the character '" + std::string(1, static_cast<char>(c)) + "'";
            error += " is not allowed here";
            return {};
        }
    }
    return out;
}

bool is_special(const Token& t, char c) { return t.kind == Token::Kind::special && t.text[0] == c; }

bool domain_label_ok(std::string_view label) {
    if (label.empty() || label.front() == '-' || label.back() == '-') return false;
    return std::all_of(label.begin(), label.end(), [](char ch) {
        auto u = static_cast<unsigned char>(ch);
        return u >= 0x80 || ascii::is_alnum(ch) || ch == '-' || ch == '_';
    });
}

// addr-spec over tokens [b, e): local-part "@" domain. The domain, lower case, or error.
std::string addr_spec_domain(const std::vector<Token>& t, std::size_t b, std::size_t e, std::string& error) {
    std::size_t at = e;
    for (std::size_t i = b; i < e; ++i)
        if (is_special(t[i], '@')) at = i;
    if (at == e) {
        error = "an address has no '@'";
        return {};
    }
    if (at == b) {
        error = "an address has no local part";
        return {};
    }
    for (std::size_t i = b; i < at; ++i)
        if (t[i].kind == Token::Kind::special && !is_special(t[i], '.')) {
            error = "the local part of an address contains '" + std::string(t[i].text) + "'";
            return {};
        }
    if (at + 1 == e) {
        error = "an address has no domain after '@'";
        return {};
    }
    if (at + 2 == e && t[at + 1].kind == Token::Kind::literal) return std::string(t[at + 1].text);
    std::string domain;
    bool want_label = true;
    for (std::size_t i = at + 1; i < e; ++i) {
        if (want_label && t[i].kind == Token::Kind::atom && domain_label_ok(t[i].text)) {
            domain += ascii::to_lower(t[i].text);
            want_label = false;
        } else if (!want_label && is_special(t[i], '.')) {
            domain += '.';
            want_label = true;
        } else {
            error = "the domain of an address is not a domain name";
            return {};
        }
    }
    if (want_label || domain.find('.') == std::string::npos) {
        error = "the domain " + domain + " of an address is not a full domain name";
        return {};
    }
    return domain;
}

// One mailbox over tokens [b, e): name-addr ([display-name] "<" addr-spec ">") or addr-spec.
std::string mailbox_domain(const std::vector<Token>& t, std::size_t b, std::size_t e, std::string& error) {
    std::size_t open = e;
    for (std::size_t i = b; i < e; ++i)
        if (is_special(t[i], '<')) {
            open = i;
            break;
        }
    if (open == e) return addr_spec_domain(t, b, e, error);
    for (std::size_t i = b; i < open; ++i)
        if (t[i].kind == Token::Kind::special && !is_special(t[i], '.')) {
            error = "the display name contains '" + std::string(t[i].text) + "' (quote it)";
            return {};
        }
    if (!is_special(t[e - 1], '>')) {
        error = "an address in '<' is not closed by '>' at its end";
        return {};
    }
    std::size_t spec = open + 1;
    // obs-route ("<@a.example,@b.example:user@c.example>"): skipped to the addr-spec.
    for (std::size_t i = spec; i + 1 < e; ++i)
        if (is_special(t[i], ':')) spec = i + 1;
    return addr_spec_domain(t, spec, e - 1, error);
}

int month_number(std::string_view m) {
    static constexpr std::array<std::string_view, 12> months{"jan", "feb", "mar", "apr", "may", "jun",
                                                             "jul", "aug", "sep", "oct", "nov", "dec"};
    for (std::size_t i = 0; i < months.size(); ++i)
        if (ascii::iequals(m, months[i])) return static_cast<int>(i) + 1;
    return 0;
}

bool all_digits(std::string_view s, std::size_t min, std::size_t max) {
    return s.size() >= min && s.size() <= max && std::all_of(s.begin(), s.end(), ascii::is_digit);
}

bool valid_time(std::string_view s) {
    // hh:mm or hh:mm:ss, each two digits within range.
    if (s.size() != 5 && s.size() != 8) return false;
    for (std::size_t i = 0; i < s.size(); ++i) {
        if (i % 3 == 2 ? s[i] != ':' : !ascii::is_digit(s[i])) return false;
    }
    auto two = [&](std::size_t i) { return (s[i] - '0') * 10 + (s[i + 1] - '0'); };
    return two(0) <= 23 && two(3) <= 59 && (s.size() == 5 || two(6) <= 60);
}

bool valid_zone(std::string_view z) {
    if (z.size() == 5 && (z[0] == '+' || z[0] == '-')) return all_digits(z.substr(1), 4, 4);
    // obs-zone: UT, GMT, the US zones and the military letters (RFC 5322 4.3).
    for (std::string_view o : {"UT", "GMT", "EST", "EDT", "CST", "CDT", "MST", "MDT", "PST", "PDT"})
        if (ascii::iequals(z, o)) return true;
    return z.size() == 1 && ascii::is_alpha(z[0]) && z[0] != 'j' && z[0] != 'J';
}

}  // namespace

std::string_view field_name(Field f) { return kNames[static_cast<std::size_t>(f)]; }

void MessageHeaders::add(std::string_view name, std::string_view value) {
    for (std::size_t i = 0; i < field_count; ++i) {
        if (!ascii::iequals(name, kNames[i])) continue;
        if (count_[i] < UINT32_MAX) ++count_[i];
        if (values_[i].size() < kept_per_field) values_[i].emplace_back(ascii::trim(value.substr(0, max_value)));
        return;
    }
}

const std::string* MessageHeaders::first(Field f) const {
    const auto& v = values_[static_cast<std::size_t>(f)];
    return v.empty() ? nullptr : &v.front();
}

MailboxList parse_mailbox_list(std::string_view value) {
    MailboxList out;
    std::vector<Token> t = tokenize(value, out.error);
    if (!out.error.empty()) return out;
    std::size_t b = 0;
    for (std::size_t i = 0; i <= t.size(); ++i) {
        if (i < t.size() && (is_special(t[i], ':') || is_special(t[i], ';'))) {
            // ':' inside "<...>" is an obs-route, anywhere else a group.
            bool in_angle = false;
            for (std::size_t j = b; j < i; ++j) in_angle = in_angle || is_special(t[j], '<');
            if (!in_angle) {
                out.error = "a group (\"name: ...;\") is not a mailbox";
                out.domains.clear();
                return out;
            }
        }
        if (i < t.size() && !is_special(t[i], ',')) continue;
        // A ',' inside "<...>" belongs to an obs-route.
        bool open_angle = false;
        for (std::size_t j = b; j < i; ++j) {
            if (is_special(t[j], '<')) open_angle = true;
            if (is_special(t[j], '>')) open_angle = false;
        }
        if (i < t.size() && open_angle) continue;
        if (i > b) {  // obs-mbox-list allows empty elements
            std::string d = mailbox_domain(t, b, i, out.error);
            if (!out.error.empty()) {
                out.domains.clear();
                return out;
            }
            out.domains.push_back(std::move(d));
        }
        b = i + 1;
    }
    if (out.domains.empty()) out.error = "it names no address";
    return out;
}

bool valid_date_time(std::string_view value) {
    // Comments out, ',' as its own word; then [day ","] day month year time zone.
    std::string plain;
    for (std::size_t i = 0; i < value.size();) {
        if (value[i] == '(') {
            if (!skip_comment(value, i)) return false;
            plain += ' ';
        } else {
            plain += value[i] == ',' ? std::string(" , ") : std::string(1, value[i]);
            ++i;
        }
    }
    std::vector<std::string_view> w;
    std::string_view rest = plain;
    while (!(rest = ascii::trim(rest)).empty()) {
        std::size_t end = 0;
        while (end < rest.size() && !ascii::is_space(rest[end])) ++end;
        w.push_back(rest.substr(0, end));
        rest.remove_prefix(end);
        if (w.size() > 8) return false;
    }
    std::size_t k = 0;
    if (w.size() == 7) {
        static constexpr std::array<std::string_view, 7> days{"mon", "tue", "wed", "thu", "fri", "sat", "sun"};
        if (std::none_of(days.begin(), days.end(), [&](std::string_view d) { return ascii::iequals(w[0], d); }) ||
            w[1] != ",")
            return false;
        k = 2;
    }
    if (w.size() != k + 5) return false;
    return all_digits(w[k], 1, 2) && month_number(w[k + 1]) != 0 && all_digits(w[k + 2], 2, 4) &&
           valid_time(w[k + 3]) && valid_zone(w[k + 4]);
}

bool valid_msg_id(std::string_view value) {
    std::string error;
    std::vector<Token> t = tokenize(value, error);
    if (!error.empty() || t.size() < 5 || !is_special(t.front(), '<') || !is_special(t.back(), '>')) return false;
    std::size_t ats = 0, at = 0;
    for (std::size_t i = 1; i + 1 < t.size(); ++i) {
        if (is_special(t[i], '@')) {
            ++ats;
            at = i;
        } else if (t[i].kind == Token::Kind::special && !is_special(t[i], '.')) {
            return false;
        }
    }
    // id-left and id-right both non-empty; blanks inside the brackets are not allowed either.
    std::string_view inner = value.substr(value.find('<') + 1);
    inner = inner.substr(0, inner.rfind('>'));
    if (std::any_of(inner.begin(), inner.end(), [](char c) { return ascii::is_space(c); })) return false;
    return ats == 1 && at > 1 && at + 2 < t.size();
}

}  // namespace preflight
