// A TCP listening address given as an address literal and a port: "127.0.0.1:9465",
// "[::1]:9465". No host names (a listener that resolves names at start-up listens wherever DNS
// says) and no port-only form (listening on every interface must be asked for: 0.0.0.0:9465).
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace preflight {

struct ListenAddress {
    std::string host;  // the address literal, without brackets
    bool v6 = false;
    std::uint16_t port = 0;

    std::string to_string() const;  // "127.0.0.1:9465", "[::1]:9465"
    bool is_loopback() const;       // 127.0.0.0/8 or ::1
    bool operator==(const ListenAddress&) const = default;
};

// On failure, why (if given) says what is wrong, e.g. "needs a port (127.0.0.1:9465)".
std::optional<ListenAddress> parse_listen_address(std::string_view text, std::string* why = nullptr);

}  // namespace preflight
