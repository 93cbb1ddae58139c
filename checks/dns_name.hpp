// Small helpers for DNS names and ASCII case, shared by the DNS, SPF and DKIM units: DNS
// compares names case-insensitively (RFC 4343) and treats a trailing dot as the root.
#pragma once

#include <string>
#include <string_view>

namespace preflight {

inline char ascii_lower(char c) { return (c >= 'A' && c <= 'Z') ? static_cast<char>(c + 32) : c; }

inline std::string ascii_lower(std::string_view s) {
    std::string out(s);
    for (char& c : out) c = ascii_lower(c);
    return out;
}

inline bool iequal(std::string_view a, std::string_view b) {
    if (a.size() != b.size()) return false;
    for (std::size_t i = 0; i < a.size(); ++i)
        if (ascii_lower(a[i]) != ascii_lower(b[i])) return false;
    return true;
}

// "Example.ORG." -> "example.org"
inline std::string normal_domain(std::string_view d) {
    std::string out = ascii_lower(d);
    while (!out.empty() && out.back() == '.') out.pop_back();
    return out;
}

}  // namespace preflight
