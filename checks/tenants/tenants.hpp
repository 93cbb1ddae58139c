// The tenants file (TenantsFile, man/preflight-tenants.5): each customer of the relay with its
// plan. A tenant is a SASL login, or for a client without one, the sender domain. One line per
// tenant, so a file of 100,000 customers is 100,000 lines a script can write and diff:
//
//   # NAME  KEY=VALUE ...   (any key a Domain line of preflight.conf may set)
//   acme        QuotaRecipients=50000/month,500/hour MaxRecipients=50 MaxMessageSize=10M BillingDay=15
//   example.org QuotaRecipients=1000/week QuotaCode=550 AuthMode=tag
//
// Each tenant's Settings are the defaults of preflight.conf with its keys applied, merged at
// load (as Domain lines are), so the lookup per message is one hash probe. Its quotas count for
// "tenant:NAME" whatever QuotaPer says, and live in the quota store, not here: a reload swaps
// the table and leaves the counters alone.
#pragma once

#include <cstddef>
#include <memory>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "config.hpp"

namespace preflight {

struct Tenant {
    std::string name;
    Settings settings;
    int line = 0;
};

class TenantTable {
public:
    // The tenant of a transaction: the login when it names one, else the sender domain (lower
    // case, one trailing dot ignored); nullptr when neither is a tenant.
    const Tenant* find(std::string_view login, std::string_view sender_domain) const;
    const Tenant* find(std::string_view name) const;  // exactly as written in the file
    std::size_t size() const { return tenants_.size(); }
    const std::string& file() const { return file_; }
    bool any_quota() const { return any_quota_; }

private:
    friend struct TenantsBuilder;
    std::string file_;
    std::vector<Tenant> tenants_;
    std::unordered_map<std::string, std::size_t, detail::StringHash, std::equal_to<>> index_;
    bool any_quota_ = false;
};

struct TenantsResult {
    std::shared_ptr<const TenantTable> table;  // set exactly when errors is empty
    std::vector<ConfigError> errors;           // FILE:LINE: KEY: why, in line order
};

// defaults: the settings of preflight.conf that a tenant's keys are applied to.
TenantsResult parse_tenants_text(std::string_view name, std::string_view text, const Settings& defaults);
TenantsResult parse_tenants_file(const std::string& path, const Settings& defaults);

}  // namespace preflight
