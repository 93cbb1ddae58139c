#include "quota_status.hpp"

#include <algorithm>
#include <chrono>
#include <iostream>
#include <optional>
#include <vector>

#include "ascii.hpp"
#include "quota.hpp"

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
    auto settings_of = [&](std::string_view subject) -> const Settings& {
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

}  // namespace preflight
