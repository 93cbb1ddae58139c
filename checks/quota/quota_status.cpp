#include "quota_status.hpp"

#include <algorithm>
#include <chrono>
#include <iostream>
#include <optional>
#include <vector>

#include "ascii.hpp"
#include "plan_period.hpp"
#include "quota.hpp"
#include "tenants.hpp"

namespace preflight {

int quota_status(const Config& cfg, const std::string& arg, std::ostream& out) {
    const GlobalSettings& g = cfg.global();
    std::unique_ptr<QuotaStore> store;
    try {
        store = open_quota_store(g);
    } catch (const std::exception& e) {
        std::cerr << "preflight-milter: QuotaStore: " << e.what() << "\n";
        return 1;
    }
    std::string error;
    std::optional<std::vector<std::string>> keys = store->keys(&error);
    if (!keys) {
        std::cerr << "preflight-milter: QuotaStore " << store->describe() << ": " << error << "\n";
        return 1;
    }
    // Tenants' counters ("tenant:NAME") take their limits from the tenants file; plan periods
    // are read in the period that holds now, in PlanTimeZone.
    std::shared_ptr<const TenantTable> tenants;
    if (!g.tenants_file.empty()) {
        TenantsResult t = parse_tenants_file(g.tenants_file, cfg.defaults());
        for (const ConfigError& e : t.errors) std::cerr << e.to_string() << "\n";
        if (!t.table) return 1;
        tenants = std::move(t.table);
    }
    std::string why;
    std::optional<TimeZone> zone = TimeZone::load(g.plan_time_zone, &why);
    if (!zone) {
        std::cerr << "preflight-milter: PlanTimeZone: " << why << "\n";
        return 1;
    }
    auto settings_of = [&](std::string_view subject) -> const Settings& {
        if (subject.starts_with("tenant:") && tenants)
            if (const Tenant* t = tenants->find(subject.substr(7))) return t->settings;
        if (subject.starts_with("domain:")) return cfg.for_sender_domain(subject.substr(7));
        if (subject.starts_with("sender:")) {
            auto at = subject.rfind('@');
            if (at != std::string_view::npos) return cfg.for_sender_domain(subject.substr(at + 1));
        }
        return cfg.defaults();
    };
    std::vector<std::string> wanted;  // counter keys to show
    if (arg.empty()) {
        wanted = *keys;
    } else {
        bool login = arg.starts_with("login:");
        bool sender = !login && arg.find('@') != std::string::npos;
        std::string who = login ? arg : ascii::to_lower(arg);
        std::string domain = sender ? who.substr(who.rfind('@') + 1) : who;
        std::string subject = login ? who
                                    : quota_subject(settings_of((sender ? "sender:" : "domain:") + who).quota_per,
                                                    sender ? who : "postmaster@" + domain, domain, {});
        if (!login && !sender && settings_of("domain:" + domain).quota_per != QuotaPer::domain) subject.clear();
        std::string sender_suffix = "@" + domain + "|";
        for (const std::string& k : *keys) {
            std::string_view s = std::string_view(k).substr(0, k.find('|'));
            bool match = s == "domain:" + who || s == "sender:" + who || s == who ||
                         (!login && !sender && s.starts_with("sender:") && k.find(sender_suffix) != std::string::npos);
            if (match) wanted.push_back(k);
        }
        if (!subject.empty()) {
            const Settings& s = settings_of(subject);
            for (const QuotaCounter& c : quota_counters(s, subject, true))
                if (std::find(wanted.begin(), wanted.end(), c.key) == wanted.end()) wanted.push_back(c.key);
        }
        std::sort(wanted.begin(), wanted.end());
    }
    out << "QuotaStore " << store->describe() << "\n";
    const auto now =
        std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::system_clock::now().time_since_epoch())
            .count();
    for (const std::string& k : wanted) {
        std::optional<QuotaKey> key = parse_quota_key(k);
        if (!key) continue;
        const std::string &subject = key->subject, &unit = key->unit;
        const QuotaWindow w = key->window;
        const std::string window(to_string(w));
        const Settings& s = settings_of(subject);
        std::optional<std::uint32_t> limit;
        for (const QuotaRate& r : unit == "messages" ? s.quota_messages : s.quota_recipients)
            if (r.window == w) limit = r.limit;
        QuotaCounter c{k, w, limit.value_or(0), 0};  // amount 0: read only
        if (is_plan_period(w)) {
            const PeriodSpan p = plan_period_at(w, now / 1000, *zone, s.billing_day);
            c.period_start_s = p.start_s;
            c.period_end_s = p.end_s;
        }
        QuotaResult r = store->reserve({&c, 1}, false, now);
        if (!r.ok) {
            std::cerr << "preflight-milter: QuotaStore " << store->describe() << ": " << r.error << "\n";
            return 1;
        }
        out << subject << " " << unit << " per " << window << ": " << r.used[0] << " of "
            << (limit ? std::to_string(*limit) : std::string("no limit configured"))
            << (limit && r.used[0] >= *limit ? " (reached)" : "") << "\n";
    }
    return 0;
}

namespace {

std::string json_string(std::string_view v) {
    std::string out = "\"";
    for (char c : v) {
        if (c == '"' || c == '\\') out += '\\';
        if (static_cast<unsigned char>(c) < 0x20) continue;  // names are printable ASCII already
        out += c;
    }
    return out + "\"";
}

struct UsageRow {
    std::string unit, window;
    std::uint64_t used = 0;
    std::uint32_t limit = 0;
    std::int64_t renews_s = 0;  // 0: a sliding window
};

void print_usage(const std::string& tenant, const TimeZone& zone, const std::vector<UsageRow>& rows, bool json,
                 std::ostream& out) {
    if (json) {
        out << "{\"tenant\":" << json_string(tenant) << ",\"plan_time_zone\":" << json_string(zone.name())
            << ",\"quotas\":[";
        for (std::size_t i = 0; i < rows.size(); ++i) {
            const UsageRow& r = rows[i];
            out << (i ? "," : "") << "{\"unit\":" << json_string(r.unit) << ",\"window\":" << json_string(r.window)
                << ",\"used\":" << r.used << ",\"limit\":" << r.limit
                << ",\"renews\":" << (r.renews_s ? json_string(rfc3339_text(r.renews_s, zone)) : std::string("null"))
                << "}";
        }
        out << "]}\n";
        return;
    }
    out << "tenant " << tenant << " (PlanTimeZone " << zone.name() << ")\n";
    if (rows.empty()) out << "  no quota\n";
    for (const UsageRow& r : rows) {
        out << "  " << r.unit << " per " << r.window << ": " << r.used << " of " << r.limit
            << (r.used >= r.limit ? " (reached)" : "");
        if (r.renews_s) out << "; renews " << local_time_text(r.renews_s, zone);
        else out << "; sliding";
        out << "\n";
    }
}

}  // namespace

std::optional<int> tenant_quota_status(const Config& cfg, const std::string& tenant, bool json, std::ostream& out,
                                       std::int64_t now_ms) {
    const GlobalSettings& g = cfg.global();
    if (g.tenants_file.empty() || tenant.empty()) return std::nullopt;
    TenantsResult t = parse_tenants_file(g.tenants_file, cfg.defaults());
    if (!t.table) {
        for (const ConfigError& e : t.errors) std::cerr << e.to_string() << "\n";
        return 1;
    }
    const Tenant* found = t.table->find(tenant);
    if (!found) return std::nullopt;
    std::string why;
    std::optional<TimeZone> zone = TimeZone::load(g.plan_time_zone, &why);
    if (!zone) {
        std::cerr << "preflight-milter: PlanTimeZone: " << why << "\n";
        return 1;
    }
    std::unique_ptr<QuotaStore> store;
    try {
        store = open_quota_store(g.quota_store, g.quota_store_timeout);
    } catch (const std::exception& e) {
        std::cerr << "preflight-milter: QuotaStore: " << e.what() << "\n";
        return 1;
    }
    std::vector<QuotaCounter> counters = quota_counters(found->settings, "tenant:" + found->name, true, now_ms, &*zone);
    std::vector<UsageRow> rows;
    for (QuotaCounter& c : counters) {
        c.amount = 0;  // read only
        QuotaResult r = store->reserve({&c, 1}, false, now_ms);
        if (!r.ok) {
            std::cerr << "preflight-milter: QuotaStore " << store->describe() << ": " << r.error << "\n";
            return 1;
        }
        std::optional<QuotaKey> k = parse_quota_key(c.key);
        rows.push_back(
            {k ? k->unit : std::string(), std::string(to_string(c.window)), r.used[0], c.limit, c.period_end_s});
    }
    print_usage(found->name, *zone, rows, json, out);
    return 0;
}

}  // namespace preflight
