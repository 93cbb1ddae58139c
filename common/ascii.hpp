// ASCII text helpers, one copy for the whole tree. Mail protocols are ASCII where these are used
// (keywords, header and field names, codes, configuration keys), so case folds only in ASCII, on
// purpose. Which bytes count as blank differs by format; each class below is named for what it
// holds, and a caller picks the one its format means.
#pragma once

#include <string>
#include <string_view>

namespace preflight::ascii {

constexpr char lower(char c) { return (c >= 'A' && c <= 'Z') ? static_cast<char>(c - 'A' + 'a') : c; }
constexpr bool is_digit(char c) { return c >= '0' && c <= '9'; }
constexpr bool is_alpha(char c) { return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z'); }
constexpr bool is_alnum(char c) { return is_alpha(c) || is_digit(c); }

// Space or tab: the blanks inside a line of a configuration file.
constexpr bool is_hspace(char c) { return c == ' ' || c == '\t'; }
// Space, tab or CR: the blanks inside a line read with its CR left on (rule and policy files,
// CRLF input).
constexpr bool is_hspace_cr(char c) { return c == ' ' || c == '\t' || c == '\r'; }
// Any ASCII white space: space, \t, \r, \n, \f, \v (free text, message bodies).
constexpr bool is_space(char c) { return c == ' ' || (c >= '\t' && c <= '\r'); }

template <class Blank>
constexpr std::string_view trim_if(std::string_view s, Blank blank) {
    while (!s.empty() && blank(s.front())) s.remove_prefix(1);
    while (!s.empty() && blank(s.back())) s.remove_suffix(1);
    return s;
}
// Without any ASCII white space at either end.
constexpr std::string_view trim(std::string_view s) { return trim_if(s, is_space); }

inline std::string to_lower(std::string_view s) {
    std::string out(s);
    for (char& c : out) c = lower(c);
    return out;
}

constexpr bool iequals(std::string_view a, std::string_view b) {
    if (a.size() != b.size()) return false;
    for (std::size_t i = 0; i < a.size(); ++i)
        if (lower(a[i]) != lower(b[i])) return false;
    return true;
}

constexpr bool istarts_with(std::string_view s, std::string_view prefix) {
    return s.size() >= prefix.size() && iequals(s.substr(0, prefix.size()), prefix);
}

}  // namespace preflight::ascii
