#include "duration.hpp"

#include <charconv>
#include <cstdint>
#include <limits>

#include "ascii.hpp"

namespace preflight {

std::optional<std::chrono::milliseconds> parse_duration(std::string_view text, BareNumber bare) {
    std::size_t digits = 0;
    while (digits < text.size() && ascii::is_digit(text[digits])) ++digits;
    if (digits == 0) return std::nullopt;
    const std::string_view unit = text.substr(digits);
    std::int64_t scale;
    if (unit.empty()) scale = bare == BareNumber::days ? 86'400'000 : 1000;
    else if (ascii::iequals(unit, "ms")) scale = 1;
    else if (ascii::iequals(unit, "s")) scale = 1000;
    else if (ascii::iequals(unit, "m")) scale = 60'000;
    else if (ascii::iequals(unit, "h")) scale = 3'600'000;
    else if (ascii::iequals(unit, "d")) scale = 86'400'000;
    else if (ascii::iequals(unit, "w")) scale = 7 * 86'400'000LL;
    else return std::nullopt;
    std::int64_t n = 0;
    auto [end, ec] = std::from_chars(text.data(), text.data() + digits, n);
    if (ec != std::errc() || end != text.data() + digits) return std::nullopt;
    if (n > std::numeric_limits<std::int64_t>::max() / scale) return std::nullopt;
    return std::chrono::milliseconds(n * scale);
}

}  // namespace preflight
