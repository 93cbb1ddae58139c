#include "listen_address.hpp"

#include <arpa/inet.h>
#include <netinet/in.h>

#include <charconv>
#include <cstring>

namespace preflight {

namespace {

void set_why(std::string* why, const char* text) {
    if (why) *why = text;
}

bool is_address(const std::string& host, bool v6) {
    unsigned char buf[sizeof(in6_addr)];
    return ::inet_pton(v6 ? AF_INET6 : AF_INET, host.c_str(), buf) == 1;
}

}  // namespace

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
    if (!text.empty() && text.front() == '[') {
        auto close = text.find("]:");
        if (close == std::string_view::npos) {
            set_why(why, "is not [IPV6]:PORT ([::1]:9465)");
            return std::nullopt;
        }
        host = text.substr(1, close - 1);
        port = text.substr(close + 2);
        out.v6 = true;
    } else {
        auto colon = text.rfind(':');
        if (colon == std::string_view::npos) {
            set_why(why, "needs an address and a port (127.0.0.1:9465)");
            return std::nullopt;
        }
        host = text.substr(0, colon);
        port = text.substr(colon + 1);
        if (host.find(':') != std::string_view::npos) {
            set_why(why, "has an IPv6 address without brackets ([::1]:9465)");
            return std::nullopt;
        }
    }
    unsigned long p = 0;
    auto [end, ec] = std::from_chars(port.data(), port.data() + port.size(), p);
    if (port.empty() || ec != std::errc() || end != port.data() + port.size() || p == 0 || p > 65535) {
        set_why(why, "has a bad port (1..65535)");
        return std::nullopt;
    }
    out.host = std::string(host);
    if (host.empty() || !is_address(out.host, out.v6)) {
        set_why(why, out.v6 ? "has a bad IPv6 address in brackets"
                            : "has no IP address before the port (an address literal: 127.0.0.1:9465)");
        return std::nullopt;
    }
    out.port = static_cast<std::uint16_t>(p);
    return out;
}

}  // namespace preflight
