#include "milter_suppression.hpp"

#include <chrono>
#include <mutex>
#include <stdexcept>

#include "logger.hpp"
#include "trace_header.hpp"

namespace preflight {

SuppressionService open_suppression_service(const Config& cfg, const SuppressionService* previous) {
    SuppressionService out;
    const GlobalSettings& g = cfg.global();
    if (!g.suppression_trace_key_file.empty()) {
        std::string error;
        std::optional<std::string> key = read_trace_key(g.suppression_trace_key_file, error);
        if (!key) throw std::runtime_error("SuppressionTraceKeyFile: " + error);
        out.trace_key = std::move(*key);
    }
    if (!cfg.any_suppression() && out.trace_key.empty()) return out;
    out.spec = g.suppression_store + "|" + std::to_string(g.suppression_store_timeout.count());
    out.credentials = g.suppression_store_credentials;
    out.sentinel_credentials = g.suppression_store_sentinel_credentials;
    // A new password file (a rotated password) needs new connections, as a new store does.
    if (previous && previous->store && previous->spec == out.spec && previous->credentials == out.credentials &&
        previous->sentinel_credentials == out.sentinel_credentials) {
        out.store = previous->store;
        out.stats_store = previous->stats_store;
        return out;
    }
    try {
        out.store = open_suppression_store(g);
        out.stats_store = open_suppression_store(g);
    } catch (const std::exception& e) {
        throw std::runtime_error(std::string("SuppressionStore: ") + e.what());
    }
    return out;
}

namespace {

// The store's counts, read at most every kStatsCacheSeconds: a scrape every few seconds must not
// count a list of a million entries each time.
class StatsCache {
public:
    explicit StatsCache(std::function<std::shared_ptr<SuppressionStore>()> store) : store_(std::move(store)) {}

    SuppressionStats get() {
        std::lock_guard lock(mutex_);
        auto now = std::chrono::steady_clock::now();
        if (read_ && now - read_at_ < std::chrono::seconds(kStatsCacheSeconds)) return stats_;
        std::shared_ptr<SuppressionStore> s = store_();
        if (!s) return stats_;
        std::string error;
        auto unix_now =
            std::chrono::duration_cast<std::chrono::seconds>(std::chrono::system_clock::now().time_since_epoch())
                .count();
        if (std::optional<SuppressionStats> st = s->stats(unix_now, &error)) {
            stats_ = std::move(*st);
            read_ = true;
            read_at_ = now;
        } else {
            Logger::log(Logger::Level::warning, "suppression: metrics not read from the store (" + error + ")");
        }
        return stats_;
    }

private:
    std::function<std::shared_ptr<SuppressionStore>()> store_;
    std::mutex mutex_;
    SuppressionStats stats_;
    bool read_ = false;
    std::chrono::steady_clock::time_point read_at_{};
};

}  // namespace

void register_suppression_metrics(metrics::Registry& r, const SuppressionCounters& counters,
                                  std::function<std::shared_ptr<SuppressionStore>()> stats_store) {
    r.add("preflight_suppression_hits_total", "RCPT TO lookups that found the recipient suppressed, by scope",
          counters.hits_domain, {{"scope", "domain"}});
    r.add("preflight_suppression_hits_total", "RCPT TO lookups that found the recipient suppressed, by scope",
          counters.hits_global, {{"scope", "global"}});
    r.add("preflight_suppression_store_errors_total", "RCPT TO lookups the suppression store did not answer",
          counters.store_errors);
    auto cache = std::make_shared<StatsCache>(std::move(stats_store));
    r.add_samples("preflight_suppression_entries", "suppressed recipients by reason (the failure's category)",
                  metrics::Type::gauge, [cache](std::vector<metrics::Sample>& out) {
                      for (const auto& [reason, n] : cache->get().entries_by_reason)
                          out.push_back({{{"reason", reason}}, static_cast<double>(n)});
                  });
    r.add_samples("preflight_suppression_adds_total", "recipients put on the suppression list, by source",
                  metrics::Type::counter, [cache](std::vector<metrics::Sample>& out) {
                      for (const auto& [source, n] : cache->get().adds_by_source)
                          out.push_back({{{"source", source}}, static_cast<double>(n)});
                  });
    r.add_samples("preflight_suppression_sender_faults_total",
                  "failures that were the sender's or the relay's fault (never suppress), by sender domain",
                  metrics::Type::counter, [cache](std::vector<metrics::Sample>& out) {
                      for (const auto& [key, n] : cache->get().sender_faults) {
                          auto bar = key.find('|');
                          out.push_back({{{"sender_domain", key.substr(0, bar)},
                                          {"category", bar == std::string::npos ? "" : key.substr(bar + 1)}},
                                         static_cast<double>(n)});
                      }
                  });
}

}  // namespace preflight
