// Netstrings (djb, cr.yp.to/proto/netstrings.txt): "LEN:DATA," with LEN in decimal, no leading
// zeros except for the empty string ("0:,"). The framing of Postfix's socketmap protocol.
//
// parse_netstring is a plain function over whatever bytes have arrived so far, so a server can
// call it after every read: it never needs the whole netstring to decide that one is too long
// or malformed, which bounds what a connection may make the server buffer.
#pragma once

#include <cstddef>
#include <string>
#include <string_view>

namespace preflight {

struct Netstring {
    enum class Status {
        complete,    // payload and consumed are set
        incomplete,  // a prefix of a valid netstring: read more
        too_long,    // the announced length is over the limit (known from the digits alone)
        malformed,   // not a netstring: no digits, a leading zero, no ':' or no ','
    };
    Status status = Status::incomplete;
    std::string_view payload;  // complete: points into the buffer
    std::size_t consumed = 0;  // complete: bytes of the buffer taken, "LEN:" to ','
};

// The netstring at the start of buf, whose payload may be at most max_payload bytes.
Netstring parse_netstring(std::string_view buf, std::size_t max_payload);

// Appends one netstring whose payload is the concatenation of the parts.
void append_netstring(std::string& out, std::string_view a, std::string_view b = {}, std::string_view c = {});

}  // namespace preflight
