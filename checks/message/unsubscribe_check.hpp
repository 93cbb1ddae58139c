// One-click unsubscribe (RFC 8058) for bulk mail, as Gmail and Yahoo require it of bulk senders.
//
// Bulk mail: a Precedence of bulk or list, a List-Id header, or Bulk yes for the sender domain.
// Other mail is accepted unchecked. Bulk mail must carry
//   List-Unsubscribe with an https URI ("<https://...>", RFC 2369's list of bracketed URIs), and
//   List-Unsubscribe-Post: List-Unsubscribe=One-Click,
// and when it carries DKIM signatures, one of them must list both fields in its h= (RFC 8058 4:
// receivers ignore the unsubscribe headers unless a valid signature covers them). Mail the relay
// signs later is the signer's business: its h= is not known here.
//
//   not bulk, or all present (and signed)   -> accept
//   a header missing or wrong              -> 550 5.7.1 unsubscribe_missing ({reason}: why bulk;
//                                             {problem}: what is missing)
//   not in any signature's h=              -> 550 5.7.1 unsubscribe_unsigned (the headers to add to h=)
#pragma once

#include <vector>

#include "auth_results.hpp"
#include "message_headers.hpp"
#include "verdict.hpp"

namespace preflight {

Verdict check_one_click_unsubscribe(const MessageHeaders& headers, bool bulk_by_conf,
                                    const std::vector<DkimSignatureInfo>& signatures);

}  // namespace preflight
