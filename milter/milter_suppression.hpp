// The milter's side of the suppression list: opening the store for a configuration (kept across
// a reload while SuppressionStore, SuppressionStoreTimeout and its password files' contents stay
// the same), reading the trace key, and the /metrics families.
#pragma once

#include <functional>
#include <memory>
#include <string>

#include "config.hpp"
#include "metrics.hpp"
#include "suppression.hpp"

namespace preflight {

struct SuppressionService {
    // Looked up at RCPT TO; null when SuppressionMode is off for every domain.
    std::shared_ptr<SuppressionStore> store;
    // A second connection for /metrics, so that counting a large list at scrape time never holds
    // the lock the lookups take.
    std::shared_ptr<SuppressionStore> stats_store;
    std::string trace_key;  // "": no SuppressionTraceKeyFile
    // What the stores were opened with, to compare at reload.
    std::string spec;
    RedisCredentials credentials, sentinel_credentials;
};

// Throws std::runtime_error ("SuppressionStore: why", "SuppressionTraceKeyFile: why") when the
// SQLite file or the key cannot be used. previous: the running configuration's, reused when the
// store keys did not change.
SuppressionService open_suppression_service(const Config& cfg, const SuppressionService* previous);

// preflight_suppression_hits_total{scope}, preflight_suppression_store_errors_total, and from the
// store at scrape time (cached for kStatsCacheSeconds): preflight_suppression_entries{reason},
// preflight_suppression_adds_total{source}, preflight_suppression_sender_faults_total{sender_domain,category}.
void register_suppression_metrics(metrics::Registry& r, const SuppressionCounters& counters,
                                  std::function<std::shared_ptr<SuppressionStore>()> stats_store);

inline constexpr int kStatsCacheSeconds = 30;

}  // namespace preflight
