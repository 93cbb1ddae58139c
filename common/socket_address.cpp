#include "socket_address.hpp"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/un.h>

#include <charconv>
#include <cstring>

#include "ascii.hpp"

namespace preflight {
namespace {

void set_why(std::string* why, std::string text) {
    if (why) *why = std::move(text);
}

bool is_address(const std::string& host, bool v6) {
    unsigned char buf[sizeof(in6_addr)];
    return ::inet_pton(v6 ? AF_INET6 : AF_INET, host.c_str(), buf) == 1;
}

std::optional<std::uint16_t> parse_port(std::string_view s) {
    unsigned long p = 0;
    auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), p);
    if (s.empty() || ec != std::errc() || end != s.data() + s.size() || p == 0 || p > 65535) return std::nullopt;
    return static_cast<std::uint16_t>(p);
}

// HOST:PORT or [IPV6]:PORT: the host (brackets removed), whether it was bracketed, the port.
bool split_host_port(std::string_view text, std::string_view& host, std::string_view& port, bool& bracketed,
                     std::string* why, std::string_view example) {
    bracketed = !text.empty() && text.front() == '[';
    if (bracketed) {
        auto close = text.find("]:");
        if (close == std::string_view::npos) {
            set_why(why, "is not [IPV6]:PORT (" + std::string(example) + ")");
            return false;
        }
        host = text.substr(1, close - 1);
        port = text.substr(close + 2);
        return true;
    }
    auto colon = text.rfind(':');
    if (colon == std::string_view::npos) return false;
    host = text.substr(0, colon);
    port = text.substr(colon + 1);
    if (host.find(':') != std::string_view::npos) {
        set_why(why, "has an IPv6 address without brackets (" + std::string(example) + ")");
        return false;
    }
    return true;
}

}  // namespace

bool valid_hostname(std::string_view h) {
    if (h.empty() || h.size() > 253) return false;
    std::size_t label = 0;
    for (char c : h) {
        if (c == '.') {
            if (label == 0) return false;
            label = 0;
            continue;
        }
        if (!(ascii::is_alnum(c) || c == '-') || ++label > 63) return false;
    }
    return label > 0;
}

std::string SocketAddress::libmilter() const {
    switch (kind) {
    case Kind::unix_socket: return "unix:" + path;
    case Kind::inet: return "inet:" + std::to_string(port) + "@" + host;
    case Kind::inet6: return "inet6:" + std::to_string(port) + "@" + host;
    }
    return {};
}

std::string SocketAddress::postfix() const {
    switch (kind) {
    case Kind::unix_socket: return "unix:" + path;
    case Kind::inet: return "inet:" + host + ":" + std::to_string(port);
    case Kind::inet6: return "inet:[" + host + "]:" + std::to_string(port);
    }
    return {};
}

std::optional<SocketAddress> parse_socket_address(std::string_view text, std::string* why, NameUse names) {
    static constexpr std::string_view forms =
        "unix:/path, local:/path, inet:HOST:PORT, inet:[IPV6]:PORT, inet:PORT@HOST or inet6:PORT@HOST";
    auto colon = text.find(':');
    if (colon == std::string_view::npos) {
        set_why(why, "is not a socket (" + std::string(forms) + ")");
        return std::nullopt;
    }
    std::string_view scheme = text.substr(0, colon), rest = text.substr(colon + 1);
    SocketAddress s;
    if (ascii::iequals(scheme, "unix") || ascii::iequals(scheme, "local")) {
        if (rest.empty() || rest.front() != '/') {
            set_why(why, "needs an absolute path (unix:/run/preflight-milter/milter.sock)");
            return std::nullopt;
        }
        if (rest.size() >= sizeof(sockaddr_un{}.sun_path)) {
            set_why(why, "has a path too long for a unix socket (at most " +
                             std::to_string(sizeof(sockaddr_un{}.sun_path) - 1) + " bytes)");
            return std::nullopt;
        }
        s.path = std::string(rest);
        return s;
    }
    bool inet6 = ascii::iequals(scheme, "inet6");
    if (!inet6 && !ascii::iequals(scheme, "inet")) {
        set_why(why, "is not a socket (" + std::string(forms) + ")");
        return std::nullopt;
    }
    std::string_view host, port;
    bool bracketed = false;
    if (auto at = rest.find('@'); at != std::string_view::npos) {  // libmilter: PORT@HOST
        port = rest.substr(0, at);
        host = rest.substr(at + 1);
    } else if (inet6) {
        set_why(why, "is not PORT@HOST (inet6:8891@::1)");
        return std::nullopt;
    } else if (!split_host_port(rest, host, port, bracketed, why, "inet:[::1]:8891 or inet6:8891@::1")) {
        if (why && why->empty())
            set_why(why, "needs a host as well as a port (inet:127.0.0.1:" + std::string(rest) +
                             "); listening on every interface must be asked for (0.0.0.0)");
        return std::nullopt;
    }
    auto p = parse_port(port);
    if (!p) {
        set_why(why, "has a bad port (1..65535)");
        return std::nullopt;
    }
    const std::string h(host);
    const bool v4_literal = is_address(h, false), v6_literal = is_address(h, true);
    if (bracketed && !v6_literal) {
        set_why(why, "has a bad IPv6 address in brackets");
        return std::nullopt;
    }
    if (!v4_literal && !v6_literal) {
        if (names == NameUse::literal) {
            set_why(why, "needs an address literal, not a host name (inet:127.0.0.1:PORT, inet:[::1]:PORT)");
            return std::nullopt;
        }
        if (!valid_hostname(host)) {
            set_why(why, "has a bad host (an IP address or a host name)");
            return std::nullopt;
        }
    }
    if (inet6 && v4_literal) {
        set_why(why, "has an IPv4 address after inet6 (use inet:)");
        return std::nullopt;
    }
    s.kind = (inet6 || v6_literal) ? SocketAddress::Kind::inet6 : SocketAddress::Kind::inet;
    s.host = h;
    s.port = *p;
    return s;
}

std::string ListenAddress::to_string() const {
    // Appended piecewise: GCC 12 -Wrestrict misfires on "[" + s at -O3.
    std::string out;
    if (v6) out += '[';
    out += host;
    if (v6) out += ']';
    out += ':';
    out += std::to_string(port);
    return out;
}

bool ListenAddress::is_loopback() const {
    if (v6) {
        in6_addr a{};
        return ::inet_pton(AF_INET6, host.c_str(), &a) == 1 && IN6_IS_ADDR_LOOPBACK(&a);
    }
    in_addr a{};
    return ::inet_pton(AF_INET, host.c_str(), &a) == 1 && (ntohl(a.s_addr) >> 24) == 127;
}

std::optional<ListenAddress> parse_listen_address(std::string_view text, std::string* why) {
    ListenAddress out;
    std::string_view host, port;
    if (!split_host_port(text, host, port, out.v6, why, "[::1]:9465")) {
        if (why && why->empty()) set_why(why, "needs an address and a port (127.0.0.1:9465)");
        return std::nullopt;
    }
    if (!parse_port(port)) {
        set_why(why, "has a bad port (1..65535)");
        return std::nullopt;
    }
    out.host = std::string(host);
    if (host.empty() || !is_address(out.host, out.v6)) {
        set_why(why, out.v6 ? "has a bad IPv6 address in brackets"
                            : "has no IP address before the port (an address literal: 127.0.0.1:9465)");
        return std::nullopt;
    }
    out.port = *parse_port(port);
    return out;
}

}  // namespace preflight
