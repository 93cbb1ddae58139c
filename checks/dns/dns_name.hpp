// DNS names, shared by the DNS, SPF and DKIM units: DNS compares names case-insensitively
// (RFC 4343, ASCII only: ascii.hpp) and treats a trailing dot as the root.
#pragma once

#include <string>
#include <string_view>

#include "ascii.hpp"

namespace preflight {

// "Example.ORG." -> "example.org"
inline std::string normal_domain(std::string_view d) {
    std::string out = ascii::to_lower(d);
    while (!out.empty() && out.back() == '.') out.pop_back();
    return out;
}

}  // namespace preflight
