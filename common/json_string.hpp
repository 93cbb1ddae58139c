// JSON string literals, one writer for the whole tree (the classifier's JSON output, the milter's
// --test-message report): any bytes in, valid JSON out. Control bytes are escaped, malformed
// UTF-8 becomes U+FFFD, everything else is copied (runs of plain ASCII eight bytes at a time:
// it runs on every field of every result line).
#pragma once

#include <array>
#include <cstdint>
#include <cstring>
#include <string>
#include <string_view>

#include "utf8.hpp"

namespace preflight {
namespace json_detail {

inline constexpr char kHex[] = "0123456789abcdef";

// Bytes that a JSON string cannot carry as they are: controls, '"', '\\' and everything
// non-ASCII (checked as UTF-8). One table look-up per byte on the hot path.
inline constexpr std::array<bool, 256> kJsonSpecial = [] {
    std::array<bool, 256> t{};
    for (int c = 0; c < 256; ++c) t[static_cast<std::size_t>(c)] = c < 0x20 || c == '"' || c == '\\' || c >= 0x80;
    return t;
}();

// Eight bytes at a time: whether any of them is special (see kJsonSpecial). SWAR: a byte below
// 0x20, above 0x7f, or equal to '"' or '\\' sets its top bit in the result.
inline bool any_json_special(std::uint64_t w) {
    constexpr std::uint64_t ones = 0x0101010101010101ull, high = 0x8080808080808080ull;
    auto zero_byte = [&](std::uint64_t x) { return (x - ones) & ~x & high; };
    const std::uint64_t below_space = (w - ones * 0x20) & ~w & high;
    return ((w & high) | below_space | zero_byte(w ^ (ones * '"')) | zero_byte(w ^ (ones * '\\'))) != 0;
}

// The end of the run of plain bytes starting at i.
inline std::size_t plain_run_end(std::string_view s, std::size_t i) {
    for (; i + 8 <= s.size(); i += 8) {
        std::uint64_t w;
        std::memcpy(&w, s.data() + i, 8);
        if (any_json_special(w)) break;
    }
    while (i < s.size() && !kJsonSpecial[static_cast<unsigned char>(s[i])]) ++i;
    return i;
}

}  // namespace json_detail

// Appends s as a JSON string, quotes included.
inline void append_json_string(std::string& out, std::string_view s) {
    out.push_back('"');
    std::size_t i = 0;
    while (i < s.size()) {
        // Copy the run of plain ASCII in one go.
        std::size_t j = json_detail::plain_run_end(s, i);
        out.append(s.data() + i, j - i);
        i = j;
        if (i >= s.size()) break;
        unsigned char c = static_cast<unsigned char>(s[i]);
        if (c >= 0x80) {
            std::size_t n = utf8_sequence(s, i);
            if (n) out.append(s.data() + i, n), i += n;
            else out.append("\xEF\xBF\xBD"), ++i;
            continue;
        }
        switch (c) {
        case '"': out.append("\\\""); break;
        case '\\': out.append("\\\\"); break;
        case '\n': out.append("\\n"); break;
        case '\r': out.append("\\r"); break;
        case '\t': out.append("\\t"); break;
        default:
            out.append("\\u00");
            out.push_back(json_detail::kHex[c >> 4]);
            out.push_back(json_detail::kHex[c & 15]);
        }
        ++i;
    }
    out.push_back('"');
}

}  // namespace preflight
