#include "reply_parser.hpp"

#include "ascii.hpp"

#include <cstring>

namespace preflight {
namespace {

bool is_digit(char c) { return c >= '0' && c <= '9'; }
// False for every byte above ' ': the cheap first test in the scanning loops.
bool maybe_blank(char c) { return static_cast<unsigned char>(c) <= ' '; }

// A basic code at s[0..3): three digits, first 1-5, followed by ' ', '-', blank or end.
// Returns the code and sets sep to the separator (0 at end).
int leading_code(std::string_view s, char& sep) {
    if (s.size() < 3 || !is_digit(s[0]) || !is_digit(s[1]) || !is_digit(s[2])) return 0;
    if (s[0] < '1' || s[0] > '5') return 0;
    if (s.size() > 3 && s[3] != '-' && !ascii::is_space(s[3])) return 0;
    sep = s.size() > 3 ? s[3] : 0;
    return (s[0] - '0') * 100 + (s[1] - '0') * 10 + (s[2] - '0');
}

// An enhanced code at the start of s: "C.S.D" with C in {2,4,5}, followed by a blank, end,
// or punctuation that is not the start of another number ("5.1.1." and "5.1.1:" occur).
// Returns the number of bytes consumed, 0 if none.
std::size_t leading_enhanced(std::string_view s, EnhancedCode& out) {
    if (s.size() < 5 || (s[0] != '2' && s[0] != '4' && s[0] != '5') || s[1] != '.') return 0;
    std::size_t i = 2;
    unsigned parts[2] = {0, 0};
    for (int p = 0; p < 2; ++p) {
        std::size_t start = i;
        unsigned v = 0;
        while (i < s.size() && is_digit(s[i]) && i - start < 3) v = v * 10 + unsigned(s[i++] - '0');
        if (i == start) return 0;
        if (i < s.size() && is_digit(s[i])) return 0;  // more than 3 digits
        parts[p] = v;
        if (p == 0) {
            if (i >= s.size() || s[i] != '.') return 0;
            ++i;
        }
    }
    if (i < s.size()) {
        char c = s[i];
        bool ok = ascii::is_space(c) || c == ';' || c == ':' || c == ',' || c == ')' || c == ']' || c == '>' ||
                  c == '"' || c == '\'' || (c == '.' && (i + 1 == s.size() || !is_digit(s[i + 1])));
        if (!ok) return 0;
    }
    out.cls = static_cast<std::uint16_t>(s[0] - '0');
    out.subject = static_cast<std::uint16_t>(parts[0]);
    out.detail = static_cast<std::uint16_t>(parts[1]);
    return i;
}

// Skips "Diagnostic-Code:" and a diagnostic type ("smtp;", "X-Postfix;").
// Sets smtp to false when the diagnostic type says the text is not an SMTP reply
// ("X-Unix; 255" is an exit status, not reply code 255).
std::string_view strip_diagnostic_prefix(std::string_view s, bool& smtp) {
    smtp = true;
    if (ascii::istarts_with(s, "diagnostic-code:")) s = ascii::trim(s.substr(16));
    else if (ascii::istarts_with(s, "diagnostic code:")) s = ascii::trim(s.substr(16));
    std::size_t semi = s.substr(0, 17).find(';');  // a type is at most 16 bytes
    if (semi != std::string_view::npos) {
        std::string_view type = s.substr(0, semi);
        bool is_smtp = ascii::istarts_with(type, "smtp") || ascii::istarts_with(type, "esmtp") ||
                       ascii::istarts_with(type, "lmtp");
        bool known = is_smtp || ascii::istarts_with(type, "x-") || ascii::istarts_with(type, "mail");
        if (known && type.find(' ') == std::string_view::npos) {
            s = ascii::trim(s.substr(semi + 1));
            smtp = is_smtp;
        }
    }
    return s;
}

// Finds "NNN C.S.D" or "NNN-C.S.D" after a "said:" or anywhere at a word start, for replies
// wrapped in an MTA's own words ("host mx[1.2.3.4] said: 550 5.1.1 ...").
bool embedded_codes(std::string_view s, int& code, EnhancedCode& enh) {
    for (std::size_t i = 0; i + 9 <= s.size(); ++i) {
        if (s[i] < '2' || s[i] > '5') continue;  // cheap test first: leading_code below wants 200-599
        if (i > 0 && !ascii::is_space(s[i - 1]) && s[i - 1] != ':' && s[i - 1] != '(' && s[i - 1] != '#') continue;
        char sep = 0;
        int c = leading_code(s.substr(i), sep);
        if (c < 200 || sep == 0) continue;
        EnhancedCode e;
        if (leading_enhanced(s.substr(i + 4), e) && e.cls == c / 100) {
            code = c;
            enh = e;
            return true;
        }
    }
    return false;
}

}  // namespace

std::size_t EnhancedCode::format(char* buf) const {
    char* p = buf;
    auto put = [&p](unsigned v) {
        char tmp[5];
        int n = 0;
        do {
            tmp[n++] = static_cast<char>('0' + v % 10);
            v /= 10;
        } while (v && n < 5);
        while (n) *p++ = tmp[--n];
    };
    put(cls);
    *p++ = '.';
    put(subject);
    *p++ = '.';
    put(detail);
    return static_cast<std::size_t>(p - buf);
}

bool parse_enhanced_code(std::string_view s, EnhancedCode& out) {
    EnhancedCode e;
    if (leading_enhanced(s, e) != s.size()) return false;
    out = e;
    return true;
}

void parse_reply(std::string_view raw, std::string& scratch, ParsedReply& out) {
    out = ParsedReply{};
    scratch.clear();
    bool smtp = true;
    std::string_view s = strip_diagnostic_prefix(ascii::trim(raw), smtp);
    if (!s.empty() && s[0] == '#') s.remove_prefix(1);  // Exchange's "#550 5.1.1 ..."

    char sep = 0;
    out.code = smtp ? leading_code(s, sep) : 0;
    if (out.code) s.remove_prefix(sep ? 4 : 3);
    s = ascii::trim(s);
    if (std::size_t n = leading_enhanced(s, out.enhanced)) {
        s.remove_prefix(n);
        // "5.1.1. No such user", "5.1.1: text": the punctuation belongs to the code.
        if (!s.empty() && (s[0] == '.' || s[0] == ':' || s[0] == ',' || s[0] == ';')) s.remove_prefix(1);
        s = ascii::trim(s);
    }

    // Copy the text, collapsing blanks and dropping repeated continuation prefixes: at each
    // line or word start, "550-", "550 5.1.1", "550-5.1.1" with the reply's own code.
    scratch.reserve(s.size());
    for (std::size_t i = 0; i < s.size();) {
        if (ascii::is_space(s[i])) {
            if (!scratch.empty() && scratch.back() != ' ') scratch.push_back(' ');
            ++i;
            continue;
        }
        // At a word start: after a blank, at the beginning, or after a dropped prefix.
        if (out.code && is_digit(s[i])) {
            char csep = 0;
            int c2 = leading_code(s.substr(i), csep);
            if (c2 == out.code && csep != 0) {
                std::size_t j = i + 4;
                EnhancedCode e;
                std::size_t n = leading_enhanced(s.substr(j), e);
                // "550-" alone is a prefix; "550 " only when an enhanced code follows.
                if (n && (e == out.enhanced || !out.enhanced)) j += n;
                else if (csep != '-') j = i;
                if (j != i) {
                    i = j;
                    continue;
                }
            }
        }
        // Copy up to the next blank that needs a decision, in one append: through words and the
        // single spaces between them unless the next word could be a dropped prefix.
        std::size_t end = i + 1;
        for (;;) {
            while (end < s.size() && !maybe_blank(s[end])) ++end;
            if (end == s.size()) break;
            char c = s[end];
            if (!ascii::is_space(c)) {  // a control byte inside a word
                ++end;
                continue;
            }
            // One space, then a word that cannot be a dropped prefix: keep copying.
            if (c == ' ' && end + 1 < s.size() && !ascii::is_space(s[end + 1]) && !(out.code && is_digit(s[end + 1]))) {
                end += 2;
                continue;
            }
            break;
        }
        scratch.append(s.data() + i, end - i);
        i = end;
    }
    if (!scratch.empty() && scratch.back() == ' ') scratch.pop_back();  // after a dropped prefix
    out.text = scratch;

    if (!out.code && !out.enhanced) {
        embedded_codes(out.text, out.code, out.enhanced);
    } else if (out.code < 400) {
        // A greeting or intermediate reply in front of the real one ("220-mx.example ... 421
        // 4.2.1 Service refused"): a delivery never ends on a 1xx-3xx, so a later failure wins.
        int code = 0;
        EnhancedCode enh;
        if (embedded_codes(out.text, code, enh) && code >= 400) out.code = code, out.enhanced = enh;
    }
}

}  // namespace preflight
