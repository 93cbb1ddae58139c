// preflight-milter --quota-status: usage per counter, read from the store, beside the limit the
// conf sets for it. Here, next to the counters' key format, not in the daemon.
#pragma once

#include <ostream>
#include <string>

#include "config.hpp"

namespace preflight {

// Without arg every counter in the store; with DOMAIN, SENDER or login:NAME the counters of that
// subject (a domain also lists its senders'), and its configured quotas even when unused. Store
// errors go to stderr; the exit status: 0, or 1 when the store cannot be read.
int quota_status(const Config& cfg, const std::string& arg, std::ostream& out);

}  // namespace preflight
