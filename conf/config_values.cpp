// Parsers and printers of the conf's value types: addresses, networks, nameservers, milter
// sockets, sizes, durations, booleans, base64. Written by hand over from_chars and inet_pton,
// so each can say exactly what is wrong with a value.
#include "config.hpp"

#include "ascii.hpp"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/un.h>

#include <algorithm>
#include <charconv>
#include <cstring>
#include <limits>

namespace preflight {
namespace {

template <class T>
std::optional<T> parse_unsigned(std::string_view s) {
    if (s.empty() || !std::all_of(s.begin(), s.end(), ascii::is_digit)) return std::nullopt;
    T v{};
    auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
    if (ec != std::errc() || p != s.data() + s.size()) return std::nullopt;
    return v;
}

std::optional<std::uint16_t> parse_port(std::string_view s) {
    auto v = parse_unsigned<std::uint32_t>(s);
    if (!v || *v == 0 || *v > 65535) return std::nullopt;
    return static_cast<std::uint16_t>(*v);
}

// A host name as libmilter would resolve it: LDH labels.
void set_why(std::string* why, std::string text) {
    if (why) *why = std::move(text);
}

}  // namespace

// ---- addresses

std::string IpAddress::to_string() const {
    char buf[INET6_ADDRSTRLEN] = {};
    inet_ntop(v6 ? AF_INET6 : AF_INET, bytes.data(), buf, sizeof buf);
    return buf;
}

std::optional<IpAddress> parse_ip(std::string_view text) {
    if (text.empty() || text.size() >= INET6_ADDRSTRLEN) return std::nullopt;
    std::string s(text);  // inet_pton needs a terminated string
    IpAddress a;
    a.v6 = s.find(':') != std::string::npos;
    if (inet_pton(a.v6 ? AF_INET6 : AF_INET, s.c_str(), a.bytes.data()) != 1) return std::nullopt;
    return a;
}

std::optional<IpAddress> ip_from_sockaddr(const sockaddr* sa) {
    if (!sa) return std::nullopt;
    IpAddress a;
    if (sa->sa_family == AF_INET) {
        sockaddr_in in;
        std::memcpy(&in, sa, sizeof in);
        std::memcpy(a.bytes.data(), &in.sin_addr, 4);
        return a;
    }
    if (sa->sa_family == AF_INET6) {
        sockaddr_in6 in6;
        std::memcpy(&in6, sa, sizeof in6);
        const auto* b = reinterpret_cast<const std::uint8_t*>(&in6.sin6_addr);
        static constexpr std::uint8_t mapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
        if (std::memcmp(b, mapped, sizeof mapped) == 0) {
            std::memcpy(a.bytes.data(), b + 12, 4);
            return a;
        }
        a.v6 = true;
        std::memcpy(a.bytes.data(), b, 16);
        return a;
    }
    return std::nullopt;
}

bool Network::contains(const IpAddress& a) const {
    if (a.v6 != address.v6) return false;
    int full = prefix / 8, rest = prefix % 8;
    if (!std::equal(a.bytes.begin(), a.bytes.begin() + full, address.bytes.begin())) return false;
    if (rest == 0) return true;
    auto mask = static_cast<std::uint8_t>(0xff << (8 - rest));
    return (a.bytes[full] & mask) == address.bytes[full];
}

std::string Network::to_string() const {
    std::string s = address.to_string();
    if (prefix != (address.v6 ? 128 : 32)) {
        s += '/';
        s += std::to_string(prefix);
    }
    return s;
}

std::optional<Network> parse_network(std::string_view text, std::string* why) {
    auto slash = text.find('/');
    auto ip = parse_ip(text.substr(0, slash));
    if (!ip) {
        set_why(why, "is not an IP address or network (192.0.2.0/24, 2001:db8::/32)");
        return std::nullopt;
    }
    Network n{*ip, ip->v6 ? 128 : 32};
    if (slash != std::string_view::npos) {
        int max = n.prefix;
        auto p = parse_unsigned<int>(text.substr(slash + 1));
        if (!p || *p > max) {
            set_why(why, "has a bad prefix length (0.." + std::to_string(max) + ")");
            return std::nullopt;
        }
        n.prefix = *p;
        Network masked = n;
        for (int bit = n.prefix; bit < max; ++bit)
            masked.address.bytes[bit / 8] &= static_cast<std::uint8_t>(~(0x80 >> (bit % 8)));
        if (masked.address != n.address) {
            set_why(why, "has host bits set (did you mean " + masked.to_string() + "?)");
            return std::nullopt;
        }
    }
    return n;
}

bool contains(const std::vector<Network>& networks, const IpAddress& a) {
    return std::any_of(networks.begin(), networks.end(), [&](const Network& n) { return n.contains(a); });
}

std::optional<std::string> normalize_nameserver(std::string_view text, std::string* why) {
    std::string_view host = text, port;
    if (!text.empty() && text.front() == '[') {
        auto close = text.find(']');
        if (close == std::string_view::npos) {
            set_why(why, "has no closing ]");
            return std::nullopt;
        }
        host = text.substr(1, close - 1);
        std::string_view after = text.substr(close + 1);
        if (!after.empty()) {
            if (after.front() != ':') {
                set_why(why, "is not ip, ip:port or [ipv6]:port");
                return std::nullopt;
            }
            port = after.substr(1);
            if (port.empty()) port = "x";  // "[::1]:" is a missing port, not port 53
        }
    } else if (std::count(text.begin(), text.end(), ':') == 1) {
        auto colon = text.find(':');
        host = text.substr(0, colon);
        port = text.substr(colon + 1);
        if (port.empty()) port = "x";
    }
    auto ip = parse_ip(host);
    if (!ip || (text.front() == '[' && !ip->v6)) {
        set_why(why, "is not an IP address (nameservers are ip, ip:port or [ipv6]:port; no host names)");
        return std::nullopt;
    }
    std::uint16_t port_number = 53;
    if (!port.empty()) {
        auto p = parse_port(port);
        if (!p) {
            set_why(why, "has a bad port (1..65535)");
            return std::nullopt;
        }
        port_number = *p;
    }
    // Appends rather than "[" + s + "]": GCC 12 -Wrestrict misfires on the latter at -O3.
    std::string out;
    if (ip->v6) out += '[';
    out += ip->to_string();
    if (ip->v6) out += ']';
    out += ':';
    out += std::to_string(port_number);
    return out;
}

// ---- milter socket

// ---- scalars

std::optional<std::uint64_t> parse_size(std::string_view text) {
    int shift = 0;
    if (!text.empty()) {
        switch (ascii::lower(text.back())) {
        case 'k': shift = 10; break;
        case 'm': shift = 20; break;
        case 'g': shift = 30; break;
        default: break;
        }
        if (shift) text.remove_suffix(1);
    }
    auto n = parse_unsigned<std::uint64_t>(text);
    if (!n || *n > (std::numeric_limits<std::uint64_t>::max() >> shift)) return std::nullopt;
    return *n << shift;
}

std::optional<bool> parse_bool(std::string_view text) {
    if (ascii::iequals(text, "yes") || ascii::iequals(text, "true") || text == "1") return true;
    if (ascii::iequals(text, "no") || ascii::iequals(text, "false") || text == "0") return false;
    return std::nullopt;
}

std::optional<std::vector<std::uint8_t>> decode_base64(std::string_view text) {
    std::vector<std::uint8_t> out;
    out.reserve(text.size() * 3 / 4);
    std::uint32_t acc = 0;
    int bits = 0, pad = 0;
    for (char c : text) {
        if (c == ' ' || c == '\t' || c == '\r' || c == '\n') continue;
        if (c == '=') {
            ++pad;
            continue;
        }
        if (pad) return std::nullopt;  // data after padding
        int v;
        if (c >= 'A' && c <= 'Z') v = c - 'A';
        else if (c >= 'a' && c <= 'z') v = c - 'a' + 26;
        else if (ascii::is_digit(c)) v = c - '0' + 52;
        else if (c == '+') v = 62;
        else if (c == '/') v = 63;
        else return std::nullopt;
        acc = (acc << 6) | static_cast<std::uint32_t>(v);
        bits += 6;
        if (bits >= 8) {
            bits -= 8;
            out.push_back(static_cast<std::uint8_t>(acc >> bits));
        }
    }
    // Leftover bits: 0 (complete), 2 (one pad) or 4 (two pads); 6 means a lone character.
    if (bits == 6 || pad > 2 || (pad && pad != bits / 2)) return std::nullopt;
    if (bits && (acc & ((1u << bits) - 1))) return std::nullopt;  // non-canonical tail
    return out;
}

// ---- quotas

std::int64_t window_seconds(QuotaWindow w) {
    switch (w) {
    case QuotaWindow::minute: return 60;
    case QuotaWindow::hour: return 3600;
    case QuotaWindow::day: return 86400;
    case QuotaWindow::week: return 7 * 86400;  // plan periods: their longest span
    case QuotaWindow::month: return 31 * 86400;
    }
    return 86400;
}

std::optional<std::vector<QuotaRate>> parse_quota_rates(std::string_view text, std::string* why) {
    std::vector<QuotaRate> out;
    if (text.empty() || ascii::iequals(text, "none")) return out;
    std::size_t i = 0;
    while (i < text.size()) {
        while (i < text.size() && (text[i] == ',' || text[i] == ' ' || text[i] == '\t')) ++i;
        std::size_t start = i;
        while (i < text.size() && text[i] != ',' && text[i] != ' ' && text[i] != '\t') ++i;
        if (i == start) break;
        std::string_view item = text.substr(start, i - start);
        std::string quoted(1, '"');
        quoted.append(item.substr(0, 40)).append(1, '"');
        auto slash = item.find('/');
        auto n = slash == std::string_view::npos ? std::nullopt : parse_unsigned<std::uint64_t>(item.substr(0, slash));
        std::string_view unit = slash == std::string_view::npos ? std::string_view() : item.substr(slash + 1);
        std::optional<QuotaWindow> w;
        if (ascii::iequals(unit, "minute")) w = QuotaWindow::minute;
        else if (ascii::iequals(unit, "hour")) w = QuotaWindow::hour;
        else if (ascii::iequals(unit, "day")) w = QuotaWindow::day;
        else if (ascii::iequals(unit, "week")) w = QuotaWindow::week;
        else if (ascii::iequals(unit, "month")) w = QuotaWindow::month;
        if (!n || !w) {
            set_why(why, quoted + " is not a quota (a number, '/', and minute, hour, day, week or month: 10000/day)");
            return std::nullopt;
        }
        if (*n < 1 || *n > 1'000'000'000) {
            set_why(why, quoted + " is out of range (1..1000000000 per window)");
            return std::nullopt;
        }
        for (const QuotaRate& r : out)
            if (r.window == *w) {
                set_why(why, quoted + ": a second quota per " + std::string(to_string(*w)) + "; give each window once");
                return std::nullopt;
            }
        out.push_back({static_cast<std::uint32_t>(*n), *w});
    }
    return out;
}

std::string to_string(const std::vector<QuotaRate>& rates) {
    if (rates.empty()) return "none";
    std::string out;
    for (const QuotaRate& r : rates) {
        if (!out.empty()) out += ", ";
        out += std::to_string(r.limit);
        out += '/';
        out += to_string(r.window);
    }
    return out;
}

namespace {

std::string node_text(const RedisNode& n) {
    std::string out = n.host.find(':') != std::string::npos ? "[" + n.host + "]" : n.host;
    return out + ":" + std::to_string(n.port);
}

// "HOST", "HOST:PORT", "[IPV6]" or "[IPV6]:PORT"; quoted is the whole value, for messages.
std::optional<RedisNode> parse_redis_node(std::string_view text, std::uint16_t default_port, const std::string& quoted,
                                          std::string* why) {
    RedisNode node{"", default_port};
    std::string_view host = text, port;
    if (text.starts_with("[")) {
        auto close = text.find(']');
        if (close == std::string_view::npos) {
            set_why(why, quoted + ": no closing ']'");
            return std::nullopt;
        }
        host = text.substr(1, close - 1);
        std::string_view after = text.substr(close + 1);
        if (!after.empty()) {
            if (after.front() != ':') {
                set_why(why, quoted + ": expected ':PORT' after ']'");
                return std::nullopt;
            }
            port = after.substr(1);
        }
        if (!parse_ip(host) || host.find(':') == std::string_view::npos) {
            set_why(why, quoted + ": [" + std::string(host) + "] is not an IPv6 address");
            return std::nullopt;
        }
    } else if (auto colon = text.rfind(':'); colon != std::string_view::npos) {
        host = text.substr(0, colon);
        port = text.substr(colon + 1);
    }
    if (!port.empty() || text.ends_with(":")) {
        auto p = parse_port(port);
        if (!p) {
            set_why(why, quoted + ": \"" + std::string(port) + "\" is not a port (1..65535)");
            return std::nullopt;
        }
        node.port = *p;
    }
    if (!parse_ip(host) && !valid_hostname(host)) {
        set_why(why, quoted + ": \"" + std::string(host) + "\" is not a host (an address or a host name)");
        return std::nullopt;
    }
    node.host = std::string(host);
    return node;
}

// "/DB" at the end of rest, if any, into db; rest keeps what is before it.
bool take_redis_db(std::string_view& rest, int& db, const std::string& quoted, std::string* why) {
    auto slash = rest.rfind('/');
    if (slash == std::string_view::npos) return true;
    auto n = parse_unsigned<std::uint32_t>(rest.substr(slash + 1));
    if (!n || *n > 15) {
        set_why(why, quoted + ": the database after '/' is a number 0..15");
        return false;
    }
    db = static_cast<int>(*n);
    rest = rest.substr(0, slash);
    return true;
}

bool valid_master_name(std::string_view name) {
    return !name.empty() && name.size() <= 128 && std::all_of(name.begin(), name.end(), [](char c) {
        return ascii::is_alnum(c) || c == '-' || c == '_' || c == '.';
    });
}

// redis-sentinel://HOST[:PORT][,HOST[:PORT]...]/MASTER[/DB], rest after the scheme.
bool parse_sentinel_location(std::string_view rest, QuotaStoreSpec& spec, const std::string& quoted, std::string* why) {
    auto slash = rest.find('/');
    if (slash == std::string_view::npos) {
        set_why(why, quoted + ": give the master's name after the sentinels (redis-sentinel://HOST:PORT/MASTER)");
        return false;
    }
    std::string_view nodes = rest.substr(0, slash), tail = rest.substr(slash + 1);
    if (tail.find('/') != std::string_view::npos && !take_redis_db(tail, spec.db, quoted, why)) return false;
    if (!valid_master_name(tail)) {
        set_why(why, quoted + ": \"" + std::string(tail.substr(0, 80)) +
                         "\" is not a master name (letters, digits, '-', '_', '.')");
        return false;
    }
    spec.master_name = std::string(tail);
    while (true) {
        auto comma = nodes.find(',');
        auto node = parse_redis_node(nodes.substr(0, comma), 26379, quoted, why);
        if (!node) return false;
        spec.sentinels.push_back(std::move(*node));
        if (comma == std::string_view::npos) break;
        nodes = nodes.substr(comma + 1);
    }
    if (spec.sentinels.size() > 16) {
        set_why(why, quoted + ": more than 16 sentinels");
        return false;
    }
    return true;
}

}  // namespace

std::string QuotaStoreSpec::to_string() const {
    if (kind == Kind::sqlite) return std::string("sqlite:").append(path);
    std::string out;
    if (kind == Kind::redis) {
        out = "redis://" + node_text({host, port});
    } else {
        out = "redis-sentinel://";
        for (std::size_t i = 0; i < sentinels.size(); ++i) out.append(i ? "," : "").append(node_text(sentinels[i]));
        out.append("/").append(master_name);
    }
    if (db != 0) out.append("/").append(std::to_string(db));
    return out;
}

std::optional<QuotaStoreSpec> parse_quota_store(std::string_view text, std::string* why,
                                                std::string_view password_key) {
    QuotaStoreSpec spec;
    std::string quoted(1, '"');
    quoted.append(text.substr(0, 80)).append(1, '"');
    if (text.starts_with("sqlite:")) {
        spec.path = std::string(text.substr(7));
        if (spec.path.empty() || spec.path.front() != '/') {
            set_why(why, quoted + ": give an absolute path (sqlite:/var/lib/preflight/quota.db)");
            return std::nullopt;
        }
        return spec;
    }
    if (text.starts_with("rediss://")) {
        set_why(
            why,
            quoted +
                ": no TLS in the Redis client; connect through a local stunnel (/usr/share/preflight/contrib/redis-tls/)");
        return std::nullopt;
    }
    bool sentinel = text.starts_with("redis-sentinel://");
    if (!sentinel && !text.starts_with("redis://")) {
        set_why(why,
                quoted + " is not sqlite:/PATH, redis://HOST[:PORT][/DB] or redis-sentinel://HOST[:PORT],.../MASTER");
        return std::nullopt;
    }
    std::string_view rest = text.substr(sentinel ? 17 : 8);
    if (rest.find('@') != std::string_view::npos) {
        // Not quoted back: what is before '@' would be the password.
        set_why(why, "a password does not belong on the conf line; put it in " + std::string(password_key));
        return std::nullopt;
    }
    if (sentinel) {
        spec.kind = QuotaStoreSpec::Kind::redis_sentinel;
        spec.port = 0;
        if (!parse_sentinel_location(rest, spec, quoted, why)) return std::nullopt;
        return spec;
    }
    spec.kind = QuotaStoreSpec::Kind::redis;
    if (!take_redis_db(rest, spec.db, quoted, why)) return std::nullopt;
    auto node = parse_redis_node(rest, 6379, quoted, why);
    if (!node) return std::nullopt;
    spec.host = std::move(node->host);
    spec.port = node->port;
    return spec;
}

}  // namespace preflight
