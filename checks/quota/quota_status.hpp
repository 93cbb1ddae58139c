// preflight-milter --quota-status: usage per counter, read from the store, beside the limit the
// conf sets for it. Here, next to the counters' key format, not in the daemon.
#pragma once

#include <cstdint>
#include <optional>
#include <ostream>
#include <string>

#include "config.hpp"

namespace preflight {

// Without arg every counter in the store; with DOMAIN, SENDER or login:NAME the counters of that
// subject (a domain also lists its senders'), and its configured quotas even when unused. Store
// errors go to stderr; the exit status: 0, or 1 when the store cannot be read.
int quota_status(const Config& cfg, const std::string& arg, std::ostream& out);

// --quota-status TENANT (a name of TenantsFile): each of the tenant's windows and plan periods
// with used, limit and, for a period, when it renews; as text, or as one JSON object. nullopt
// when there is no TenantsFile or it has no such tenant (the caller falls back to
// quota_status); 1 when the tenants file or the store cannot be read.
std::optional<int> tenant_quota_status(const Config& cfg, const std::string& tenant, bool json, std::ostream& out,
                                       std::int64_t now_ms);

}  // namespace preflight
