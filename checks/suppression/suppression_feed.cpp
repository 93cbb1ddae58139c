#include "suppression_feed.hpp"

#include "ascii.hpp"

namespace preflight {

bool SuppressionFeed::feed(const FailureEvent& e, std::string* error) {
    std::string domain = e.traced_scope.empty() ? address_domain(e.sender) : std::string();
    const Settings& s = config_->for_sender_domain(domain);
    SuppressionOutcome o = suppression_outcome(e.category, e.permanent, e.complaint, s);
    if (o == SuppressionOutcome::sender_fault) {
        if (domain.empty()) {
            ++counts_.ignored;
            return true;
        }
        if (!store_->count_sender_fault(domain, e.category, error)) {
            ++counts_.errors;
            return false;
        }
        ++counts_.sender_faults;
        return true;
    }
    // A traced complaint keeps the scope the milter stored; else the sender domain's setting.
    std::string_view scope_domain = e.traced_scope.empty() ? std::string_view(domain) : e.traced_scope;
    std::optional<SuppressionRecord> r;
    if (!scope_domain.empty() || s.suppression_scope == SuppressionScope::global)
        r = suppression_record(o, scope_domain, e.recipient, e.category, e.reply, e.remote_mta, e.source, s, e.time);
    if (r && !e.traced_scope.empty()) r->entry.scope = std::string(e.traced_scope);
    if (!r) {
        ++counts_.ignored;
        return true;
    }
    std::optional<SuppressionEntry> stored = store_->record(*r, error);
    if (!stored) {
        ++counts_.errors;
        return false;
    }
    ++(stored->active ? counts_.suppressed : counts_.counted);
    return true;
}

std::unique_ptr<SuppressionFeed> open_suppression_feed(const std::string& conf_path, std::string& error) {
    ParseResult parsed = parse_config_file(conf_path);
    if (!parsed.ok()) {
        error = parsed.errors.front().to_string();
        return nullptr;
    }
    try {
        return std::make_unique<SuppressionFeed>(parsed.config, open_suppression_store(parsed.config->global()));
    } catch (const std::exception& e) {
        error = std::string("SuppressionStore: ") + e.what();
        return nullptr;
    }
}

std::string address_domain(std::string_view address) {
    std::string a = normalise_recipient(address);
    auto at = a.rfind('@');
    return at == std::string::npos ? std::string() : a.substr(at + 1);
}

std::string remote_host(std::string_view relay) {
    if (auto semi = relay.find(';'); semi != std::string_view::npos) relay = relay.substr(semi + 1);
    while (!relay.empty() && ascii::is_space(relay.front())) relay.remove_prefix(1);
    if (auto br = relay.find('['); br != std::string_view::npos && br > 0) relay = relay.substr(0, br);
    while (!relay.empty() && ascii::is_space(relay.back())) relay.remove_suffix(1);
    if (relay == "none") return {};
    return sanitise_remote_text(relay, 100);
}

}  // namespace preflight
