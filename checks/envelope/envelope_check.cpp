// RFC 5321 path syntax, scanned by hand (see envelope_check.hpp for the decisions).
#include "envelope_check.hpp"

#include "ascii.hpp"
#include "utf8.hpp"
#include <arpa/inet.h>

#include <cstdint>
#include <vector>

namespace preflight {
namespace {

constexpr std::size_t max_input = 1024;
constexpr std::size_t max_local = 64;
constexpr std::size_t max_domain = 255;
constexpr std::size_t max_label = 63;

struct Bad {
    ReplyId reply;  // sender_syntax / recipient_syntax / address_needs_smtputf8
    std::string reason;
};

// RFC 5322 atext, ASCII part.
bool is_atext(unsigned char c) {
    if (ascii::is_alpha(c) || ascii::is_digit(c)) return true;
    switch (c) {
    case '!':
    case '#':
    case '$':
    case '%':
    case '&':
    case '\'':
    case '*':
    case '+':
    case '-':
    case '/':
    case '=':
    case '?':
    case '^':
    case '_':
    case '`':
    case '{':
    case '|':
    case '}':
    case '~': return true;
    default: return false;
    }
}

// A character for a reason text: printable ASCII as is, anything else as 0xNN.
std::string show_char(unsigned char c) {
    if (c > 0x20 && c < 0x7f) return std::string("'") + static_cast<char>(c) + "'";
    if (c == ' ') return "' ' (space)";
    static constexpr char hex[] = "0123456789ABCDEF";
    return std::string("0x") + hex[c >> 4] + hex[c & 15];
}

// A label or domain quoted in a reason, shortened so that reasons stay short for any input.
std::string show(std::string_view s) {
    constexpr std::size_t cap = 40;
    // Appended piecewise: GCC 12 warns (-Wrestrict, a false positive) on "'" + std::string(...).
    std::string out;
    out.reserve(cap + 5);
    out += '\'';
    out.append(s.substr(0, cap));
    out += s.size() > cap ? "...'" : "'";
    return out;
}

std::optional<std::vector<char32_t>> decode_utf8(std::string_view s) {
    std::vector<char32_t> out;
    for (std::size_t i = 0; i < s.size();) {
        unsigned char c = static_cast<unsigned char>(s[i]);
        if (c < 0x80) {
            out.push_back(c);
            ++i;
            continue;
        }
        char32_t cp = 0;
        std::size_t n = utf8_sequence(s, i, &cp);
        if (n == 0) return std::nullopt;
        out.push_back(cp);
        i += n;
    }
    return out;
}

// One label of a domain name; appends its A-label form to out.
std::optional<std::string> check_label(std::string_view label, bool* utf8, std::string& out) {
    if (label.empty()) return std::string("empty label (two dots in a row, or a leading dot)");
    bool non_ascii = false;
    for (std::size_t i = 0; i < label.size();) {
        unsigned char c = static_cast<unsigned char>(label[i]);
        if (c >= 0x80) {
            std::size_t n = utf8_sequence(label, i, nullptr);
            if (n == 0) return "invalid UTF-8 in label " + show(label);
            non_ascii = true;
            i += n;
            continue;
        }
        if (!ascii::is_alpha(c) && !ascii::is_digit(c) && c != '-')
            return "invalid character " + show_char(c) + " in label " + show(label);
        ++i;
    }
    if (label.front() == '-') return "label " + show(label) + " starts with a hyphen";
    if (label.back() == '-') return "label " + show(label) + " ends with a hyphen";
    if (!non_ascii) {
        if (label.size() > max_label) return "label " + show(label) + " is longer than 63 octets";
        for (char c : label) out += ascii::lower(c);
        return std::nullopt;
    }
    // Converted even when SMTPUTF8 is missing, so that the caller can tell 553 5.6.7 from 501.
    *utf8 = true;
    std::string lowered;
    for (char c : label) lowered += ascii::lower(c);
    auto puny = punycode_encode(lowered);
    if (!puny) return "invalid UTF-8 in label " + show(label);
    std::string alabel = "xn--" + *puny;
    if (alabel.size() > max_label) return "label " + show(label) + " is longer than 63 octets in its xn-- form";
    out += alabel;
    return std::nullopt;
}

struct Domain {
    std::string ascii;
    std::string utf8;  // as sent (ASCII lower-cased) if it had UTF-8
    bool literal = false;
    bool is_utf8 = false;
};

std::optional<std::string> parse_ipv4(std::string_view s) {
    int parts = 0;
    std::size_t i = 0;
    while (true) {
        std::size_t start = i;
        unsigned v = 0;
        while (i < s.size() && ascii::is_digit(static_cast<unsigned char>(s[i])) && i - start < 3)
            v = v * 10 + (s[i++] - '0');
        if (i == start || v > 255) return std::nullopt;
        ++parts;
        if (i == s.size()) break;
        if (s[i] != '.' || parts == 4) return std::nullopt;
        ++i;
    }
    if (parts != 4) return std::nullopt;
    return std::string(s);
}

// [192.0.2.1] / [IPv6:2001:db8::1]; s includes the brackets.
std::optional<std::string> parse_literal(std::string_view s, Domain& d) {
    if (s.size() < 3 || s.back() != ']') return std::string("address literal without closing ']'");
    std::string_view in = s.substr(1, s.size() - 2);
    d.literal = true;
    std::size_t colon = in.find(':');
    if (colon == std::string_view::npos) {
        if (!parse_ipv4(in)) return "bad IPv4 address literal " + show(s);
        d.ascii = "[" + std::string(in) + "]";
        return std::nullopt;
    }
    std::string tag;
    for (char c : in.substr(0, colon)) tag += ascii::lower(c);
    if (tag != "ipv6") return "unknown address literal tag " + show(in.substr(0, colon)) + " (use [IPv6:...])";
    std::string addr(in.substr(colon + 1));
    unsigned char buf[16];
    char text[INET6_ADDRSTRLEN];
    if (addr.size() > 45 || inet_pton(AF_INET6, addr.c_str(), buf) != 1 || !inet_ntop(AF_INET6, buf, text, sizeof text))
        return "bad IPv6 address literal " + show(s);
    d.ascii = "[IPv6:" + std::string(text) + "]";
    return std::nullopt;
}

// A domain name or address literal; nullopt or the reason it is bad.
std::optional<std::string> parse_domain(std::string_view s, Domain& d) {
    if (s.empty()) return std::string("empty domain");
    if (s.front() == '[') return parse_literal(s, d);
    if (s.size() > 1 && s.back() == '.') s.remove_suffix(1);  // "example.org." is the same name
    if (s.size() > max_domain) return std::string("domain longer than 255 octets");
    std::size_t start = 0;
    std::string_view last;
    while (true) {
        std::size_t dot = s.find('.', start);
        std::string_view label = s.substr(start, dot == std::string_view::npos ? dot : dot - start);
        if (auto why = check_label(label, &d.is_utf8, d.ascii)) return why;
        last = label;
        if (dot == std::string_view::npos) break;
        d.ascii += '.';
        start = dot + 1;
    }
    bool numeric = true;
    for (char c : last) numeric = numeric && ascii::is_digit(static_cast<unsigned char>(c));
    if (numeric) return "top-level label " + show(last) + " is all digits (write an IP address as [192.0.2.1])";
    if (d.ascii.size() > max_domain) return std::string("domain longer than 255 octets in its xn-- form");
    if (d.is_utf8)
        for (char c : s) d.utf8 += ascii::lower(c);
    return std::nullopt;
}

// Dot-string local part; utf8 set if it has (well-formed) non-ASCII characters.
std::optional<std::string> check_dot_string(std::string_view s, bool* utf8) {
    if (s.empty()) return std::string("empty local part");
    if (s.front() == '.') return std::string("local part starts with a dot");
    if (s.back() == '.') return std::string("local part ends with a dot");
    for (std::size_t i = 0; i < s.size();) {
        unsigned char c = static_cast<unsigned char>(s[i]);
        if (c >= 0x80) {
            std::size_t n = utf8_sequence(s, i, nullptr);
            if (n == 0) return std::string("invalid UTF-8 in local part");
            *utf8 = true;
            i += n;
            continue;
        }
        if (c == '.' && i + 1 < s.size() && s[i + 1] == '.')
            return std::string("two dots in a row in local part (quote it: \"a..b\"@domain)");
        if (c != '.' && !is_atext(c)) return "invalid character " + show_char(c) + " in local part";
        ++i;
    }
    return std::nullopt;
}

bool is_dot_string(std::string_view s) {
    bool utf8 = false;
    return !check_dot_string(s, &utf8);
}

struct LocalPart {
    std::string normalised;
    std::size_t wire_length = 0;  // as sent, quotes included
};

// Scans the local part at the start of s (up to the '@'); returns the position after it.
std::optional<std::string> parse_local(std::string_view s, std::size_t& pos, LocalPart& lp, bool* utf8) {
    if (!s.empty() && s[0] == '"') {
        std::string content;
        std::size_t i = 1;
        while (true) {
            if (i >= s.size()) return std::string("quoted local part without closing '\"'");
            unsigned char c = static_cast<unsigned char>(s[i]);
            if (c == '"') break;
            if (c == '\\') {
                if (i + 1 >= s.size()) return std::string("quoted local part ends in a backslash");
                unsigned char e = static_cast<unsigned char>(s[i + 1]);
                if (e < 32 || e > 126) return "invalid character " + show_char(e) + " after backslash in local part";
                content += static_cast<char>(e);
                i += 2;
                continue;
            }
            if (c >= 0x80) {
                std::size_t n = utf8_sequence(s, i, nullptr);
                if (n == 0) return std::string("invalid UTF-8 in local part");
                *utf8 = true;
                content.append(s.substr(i, n));
                i += n;
                continue;
            }
            if (c < 32 || c == 127) return "invalid character " + show_char(c) + " in quoted local part";
            content += static_cast<char>(c);
            ++i;
        }
        pos = i + 1;
        lp.wire_length = pos;
        if (!content.empty() && is_dot_string(content)) {
            lp.normalised = content;  // the quotes were not needed
        } else {
            lp.normalised = "\"";
            for (char c : content) {
                if (c == '"' || c == '\\') lp.normalised += '\\';
                lp.normalised += c;
            }
            lp.normalised += '"';
        }
        return std::nullopt;
    }
    std::size_t at = s.find('@');
    std::string_view dot = s.substr(0, at);
    if (auto why = check_dot_string(dot, utf8)) return why;
    lp.normalised = std::string(dot);
    lp.wire_length = dot.size();
    pos = dot.size();
    return std::nullopt;
}

// "@a,@b:" source route at the start of s; returns the position after the ':'.
std::optional<std::string> skip_source_route(std::string_view s, std::size_t& pos) {
    std::size_t i = 0;
    while (true) {
        if (i >= s.size() || s[i] != '@') return std::string("bad source route (expected '@domain')");
        ++i;
        std::size_t end;
        if (i < s.size() && s[i] == '[') {
            end = s.find(']', i);
            if (end == std::string_view::npos) return std::string("bad source route (unclosed '[')");
            ++end;
        } else {
            end = s.find_first_of(",:", i);
            if (end == std::string_view::npos) return std::string("bad source route (no ':' before the mailbox)");
        }
        Domain d;
        if (auto why = parse_domain(s.substr(i, end - i), d)) return "bad source route: " + *why;
        if (end >= s.size()) return std::string("bad source route (no ':' before the mailbox)");
        if (s[end] == ':') {
            pos = end + 1;
            return std::nullopt;
        }
        if (s[end] != ',') return std::string("bad source route (expected ',' or ':')");
        i = end + 1;
    }
}

// The parser proper: a mailbox or why not.
struct Parsed {
    Mailbox mb;
    std::optional<std::string> error;
    bool needs_smtputf8 = false;
};

Parsed parse_path(std::string_view in, AddressRole role) {
    Parsed p;
    auto fail = [&](std::string why) {
        p.error = std::move(why);
        return p;
    };
    if (in.size() > max_input) return fail("address longer than 1024 octets");
    while (!in.empty() && (in.front() == ' ' || in.front() == '\t')) in.remove_prefix(1);
    while (!in.empty() && (in.back() == ' ' || in.back() == '\t')) in.remove_suffix(1);
    if (!in.empty() && in.front() == '<') {
        if (in.size() < 2 || in.back() != '>') return fail("missing closing '>'");
        in = in.substr(1, in.size() - 2);
    } else if (!in.empty() && in.back() == '>') {
        return fail("missing opening '<'");
    }
    if (in.empty()) {
        if (role == AddressRole::recipient) return fail("the null address <> is only valid as a sender");
        p.mb.null_path = true;
        return p;
    }
    std::size_t pos = 0;
    if (in.front() == '@') {
        // "@example.org" is a mailbox without local part, not a source route without ':'.
        if (in.find(':') == std::string_view::npos && in.find('@', 1) == std::string_view::npos)
            return fail("empty local part");
        if (auto why = skip_source_route(in, pos)) return fail(*why);
        in.remove_prefix(pos);
    }
    LocalPart lp;
    bool utf8 = false;
    if (auto why = parse_local(in, pos, lp, &utf8)) return fail(*why);
    if (lp.wire_length > max_local) return fail("local part longer than 64 octets");
    if (pos == in.size()) {
        // RFC 5321 4.5.1: RCPT TO:<Postmaster> needs no domain.
        if (role == AddressRole::recipient && ascii::iequals(lp.normalised, "postmaster")) {
            p.mb.local_part = lp.normalised;
            return p;
        }
        return fail("no @domain part");
    }
    if (in[pos] != '@')
        return fail("invalid character " + show_char(static_cast<unsigned char>(in[pos])) +
                    " after the quoted local part");
    Domain d;
    if (auto why = parse_domain(in.substr(pos + 1), d)) return fail(*why);
    p.mb.local_part = std::move(lp.normalised);
    p.mb.domain = std::move(d.ascii);
    p.mb.utf8_domain = std::move(d.utf8);
    p.mb.address_literal = d.literal;
    p.mb.utf8 = utf8 || d.is_utf8;
    p.needs_smtputf8 = p.mb.utf8;
    return p;
}

}  // namespace

std::string Mailbox::address() const {
    if (null_path) return {};
    return domain.empty() ? local_part : local_part + "@" + domain;
}

EnvelopeResult check_envelope_address(std::string_view path, AddressRole role, bool smtputf8) {
    Parsed p = parse_path(path, role);
    ReplyArgs args;
    auto raw = [&] {
        // Enough to recognise the address in a bounce; render() caps and sanitises further.
        constexpr std::size_t cap = 300;
        std::string_view s = path;
        if (s.size() >= 2 && s.front() == '<' && s.back() == '>') s = s.substr(1, s.size() - 2);
        return std::string(s.substr(0, cap));
    };
    ReplyId syntax = role == AddressRole::sender ? ReplyId::sender_syntax : ReplyId::recipient_syntax;
    if (p.error) {
        args.address = raw();
        args.reason = std::move(*p.error);
        return {Verdict::reject(check_name::envelope, syntax, std::move(args)), std::nullopt};
    }
    if (p.needs_smtputf8 && !smtputf8) {
        args.address = raw();
        args.domain = p.mb.domain;
        args.reason = "non-ASCII characters without SMTPUTF8";
        return {Verdict::reject(check_name::envelope, ReplyId::address_needs_smtputf8, std::move(args)), std::nullopt};
    }
    return {Verdict::accept(check_name::envelope), std::move(p.mb)};
}

std::optional<std::string> normalise_domain(std::string_view domain, bool allow_utf8, std::string* reason) {
    Domain d;
    auto why = parse_domain(domain, d);
    if (!why && d.is_utf8 && !allow_utf8) why = "non-ASCII characters in the domain";
    if (why) {
        if (reason) *reason = std::move(*why);
        return std::nullopt;
    }
    return std::move(d.ascii);
}

std::optional<std::string> punycode_encode(std::string_view utf8_label) {
    auto cps = decode_utf8(utf8_label);
    if (!cps) return std::nullopt;
    constexpr std::uint64_t base = 36, tmin = 1, tmax = 26, skew = 38, damp = 700;
    auto digit = [](std::uint64_t d) { return static_cast<char>(d < 26 ? 'a' + d : '0' + (d - 26)); };
    auto adapt = [&](std::uint64_t delta, std::uint64_t points, bool first) {
        delta = first ? delta / damp : delta / 2;
        delta += delta / points;
        std::uint64_t k = 0;
        while (delta > ((base - tmin) * tmax) / 2) {
            delta /= base - tmin;
            k += base;
        }
        return k + (base - tmin + 1) * delta / (delta + skew);
    };
    std::string out;
    for (char32_t c : *cps)
        if (c < 0x80) out += static_cast<char>(c);
    std::uint64_t b = out.size(), h = b;
    if (b > 0) out += '-';
    std::uint64_t n = 128, delta = 0, bias = 72;
    while (h < cps->size()) {
        std::uint64_t m = UINT64_MAX;
        for (char32_t c : *cps)
            if (c >= n && c < m) m = c;
        delta += (m - n) * (h + 1);  // labels are short: no overflow in 64 bits
        n = m;
        for (char32_t c : *cps) {
            if (c < n) ++delta;
            if (c == n) {
                std::uint64_t q = delta;
                for (std::uint64_t k = base;; k += base) {
                    std::uint64_t t = k <= bias ? tmin : (k >= bias + tmax ? tmax : k - bias);
                    if (q < t) break;
                    out += digit(t + (q - t) % (base - t));
                    q = (q - t) / (base - t);
                }
                out += digit(q);
                bias = adapt(delta, h + 1, h == b);
                delta = 0;
                ++h;
            }
        }
        ++delta;
        ++n;
    }
    return out;
}

}  // namespace preflight
