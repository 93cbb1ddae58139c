#include "netstring.hpp"

#include <charconv>

namespace preflight {

Netstring parse_netstring(std::string_view buf, std::size_t max_payload) {
    Netstring r;
    std::size_t i = 0, len = 0;
    for (; i < buf.size() && buf[i] >= '0' && buf[i] <= '9'; ++i) {
        if (i == 1 && buf[0] == '0') {  // "01:": leading zeros are prohibited
            r.status = Netstring::Status::malformed;
            return r;
        }
        len = len * 10 + static_cast<std::size_t>(buf[i] - '0');
        if (len > max_payload) {  // before it can overflow: max_payload is far below SIZE_MAX/10
            r.status = Netstring::Status::too_long;
            return r;
        }
    }
    if (i == buf.size()) {  // only digits so far (or nothing)
        r.status = Netstring::Status::incomplete;
        return r;
    }
    if (i == 0 || buf[i] != ':') {
        r.status = Netstring::Status::malformed;
        return r;
    }
    const std::size_t start = i + 1;
    if (buf.size() - start < len + 1) {
        r.status = Netstring::Status::incomplete;
        return r;
    }
    if (buf[start + len] != ',') {
        r.status = Netstring::Status::malformed;
        return r;
    }
    r.status = Netstring::Status::complete;
    r.payload = buf.substr(start, len);
    r.consumed = start + len + 1;
    return r;
}

void append_netstring(std::string& out, std::string_view a, std::string_view b, std::string_view c) {
    char digits[24];
    auto [end, ec] = std::to_chars(digits, digits + sizeof digits, a.size() + b.size() + c.size());
    (void)ec;  // 24 digits hold any size_t
    out.append(digits, end);
    out.push_back(':');
    out.append(a);
    out.append(b);
    out.append(c);
    out.push_back(',');
}

}  // namespace preflight
