// Size and recipient limits: plain numbers in, verdict out.
//
//  - check_announced_size: MAIL FROM's SIZE= (RFC 1870) against MaxMessageSize, so that a message
//    that is too big is refused before a byte of it is sent (552 5.3.4).
//  - check_message_size: the bytes received so far against the same limit. The milter calls it
//    for every header and body chunk with the running total (headers included, as Postfix's
//    message_size_limit counts them) and can refuse as soon as the limit is crossed.
//  - check_recipient: the n-th RCPT TO (1-based) against MaxRecipients: recipient MaxRecipients+1
//    and later get 452 4.5.3 (RecipientLimitReply tempfail; RFC 5321 4.5.3.1.10: the client sends
//    them in a later transaction, the recipients accepted so far are delivered), or 550 5.5.3
//    (RecipientLimitReply reject).
// A limit of 0 means "no limit", as Postfix's message_size_limit = 0.
#pragma once

#include <cstdint>
#include <optional>
#include <string_view>

#include "config.hpp"  // RecipientLimitReply: the conf's vocabulary
#include "verdict.hpp"

namespace preflight {

Verdict check_announced_size(std::optional<std::uint64_t> size_param, std::uint64_t max);
Verdict check_message_size(std::uint64_t bytes_so_far, std::uint64_t max);

Verdict check_recipient(unsigned n_th_recipient, unsigned max, RecipientLimitReply reply);

// The value of an ESMTP "SIZE=nnn" argument as libmilter passes it (argv[1..] of xxfi_envfrom);
// also accepts the bare number. nullopt if it is not a SIZE argument or not a number. A number
// too large for 64 bits gives UINT64_MAX (it is above any limit, which is what it means).
std::optional<std::uint64_t> parse_size_param(std::string_view esmtp_arg);

}  // namespace preflight
