// The one socket grammar of the tree, for every socket a daemon listens on or an MTA connects to:
//   unix:/path (or local:/path)
//   inet:HOST:PORT, inet:[IPV6]:PORT    (Postfix's spelling)
//   inet:PORT@HOST, inet6:PORT@HOST     (libmilter's and Sendmail's)
// A socket a daemon listens on takes an address literal only (NameUse::literal): a listener that
// resolves a name at start-up listens wherever DNS says. The metrics listener's ADDR:PORT and
// [IPV6]:PORT is the same inet grammar without the scheme.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace preflight {

struct SocketAddress {
    enum class Kind { unix_socket, inet, inet6 };
    Kind kind = Kind::unix_socket;
    std::string path;  // unix_socket
    std::string host;  // inet, inet6: an address literal (no brackets), or a host name
    std::uint16_t port = 0;

    std::string libmilter() const;  // for smfi_setconn: "unix:/p", "inet:8891@127.0.0.1", "inet6:8891@::1"
    std::string postfix() const;    // for smtpd_milters: "unix:/p", "inet:127.0.0.1:8891", "inet:[::1]:8891"
    bool operator==(const SocketAddress&) const = default;
};

enum class NameUse { allowed, literal };

// On failure, why (if given) says what is wrong, e.g. "needs an absolute path (unix:/run/x.sock)".
std::optional<SocketAddress> parse_socket_address(std::string_view text, std::string* why = nullptr,
                                                  NameUse names = NameUse::allowed);

// A TCP listening address: an address literal and a port, "127.0.0.1:9465", "[::1]:9465". No
// port-only form: listening on every interface must be asked for (0.0.0.0:9465).
struct ListenAddress {
    std::string host;  // the address literal, without brackets
    bool v6 = false;
    std::uint16_t port = 0;

    std::string to_string() const;  // "127.0.0.1:9465", "[::1]:9465"
    bool is_loopback() const;       // 127.0.0.0/8 or ::1
    bool operator==(const ListenAddress&) const = default;
};

std::optional<ListenAddress> parse_listen_address(std::string_view text, std::string* why = nullptr);

// A host name as DNS allows it (letters, digits, hyphens; labels of 1..63; at most 253).
bool valid_hostname(std::string_view h);

}  // namespace preflight
