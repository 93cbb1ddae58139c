// The one duration syntax: a whole number and a unit, ms, s, m, h, d or w, any case ("30s",
// "5d"). What a bare number means is the caller's, named at the call site: preflight.conf's
// timeouts count seconds, log's --queue-lifetime days (Postfix's maximal_queue_lifetime).
#pragma once

#include <chrono>
#include <optional>
#include <string_view>

namespace preflight {

enum class BareNumber { seconds, days };

// Nothing for an empty text, a negative or fractional number, an unknown unit or an overflow.
std::optional<std::chrono::milliseconds> parse_duration(std::string_view text, BareNumber bare);

}  // namespace preflight
