// RFC 5322 sanity of a message's headers, as the large receivers enforce it (Gmail refuses "not
// RFC 5322 compliant" messages): exactly one From naming one mailbox (several only with a
// Sender), exactly one Date and one Message-ID, each parsable, and no field of RFC 5322 3.6's
// table that may occur at most once occurring twice (Sender, Reply-To, To, Cc, Bcc, In-Reply-To,
// References, Subject).
//
//   all well                         -> accept
//   any problem                      -> 550 5.6.0 header_invalid, naming every problem found
//                                       (up to three) in {problem}
// A plain function of the headers: no DNS, no configuration.
#pragma once

#include "message_headers.hpp"
#include "verdict.hpp"

namespace preflight {

Verdict check_header_sanity(const MessageHeaders& headers);

}  // namespace preflight
