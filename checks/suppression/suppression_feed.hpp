// What preflight-classify hands the suppression list: one classified failure at a time, from the
// Postfix log (`log --suppress`), a bounce or a complaint (`dsn --suppress`). The feed applies the
// conf (the sender domain's settings: scope, thresholds, expiry), suppression_outcome() and the
// store; the sender's faults go to the store's per-domain counters instead.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>

#include "config.hpp"
#include "suppression.hpp"

namespace preflight {

struct FailureEvent {
    std::string_view sender;     // the original envelope sender ("" unknown or null sender)
    std::string_view recipient;  // as reported
    std::string_view category;   // the classifier's category name
    bool permanent = true;       // failed for good (bounced, expired), not deferred
    bool complaint = false;      // an ARF abuse report
    std::string_view reply;      // the remote reply or diagnostic
    std::string_view remote_mta;
    SuppressionSource source = SuppressionSource::log;
    std::int64_t time = 0;  // unix seconds of the failure
    // A complaint attributed by its trace token: the scope and recipient the milter stored.
    std::string_view traced_scope;
};

struct FeedCounts {
    std::uint64_t suppressed = 0;     // entries now active (new or renewed)
    std::uint64_t counted = 0;        // soft failures counted, not suppressing yet
    std::uint64_t sender_faults = 0;  // the sender's fault: counted per domain
    std::uint64_t ignored = 0;        // not a verdict on the recipient, or nothing to key it by
    std::uint64_t errors = 0;         // the store did not take it
};

class SuppressionFeed {
public:
    SuppressionFeed(std::shared_ptr<const Config> config, std::unique_ptr<SuppressionStore> store)
        : config_(std::move(config)), store_(std::move(store)) {}

    // False with error set when the store did not take it (the caller reports and goes on).
    bool feed(const FailureEvent& e, std::string* error);
    const FeedCounts& counts() const { return counts_; }
    SuppressionStore& store() { return *store_; }
    const Config& config() const { return *config_; }

private:
    std::shared_ptr<const Config> config_;
    std::unique_ptr<SuppressionStore> store_;
    FeedCounts counts_;
};

// Reads the conf and opens its SuppressionStore; nothing with error set ("FILE:LINE: KEY: why",
// or "SuppressionStore: why") otherwise.
std::unique_ptr<SuppressionFeed> open_suppression_feed(const std::string& conf_path, std::string& error);

// The domain of an address ("alice@Example.ORG" -> "example.org"), "" without one.
std::string address_domain(std::string_view address);
// "mx.example.net[192.0.2.1]:25" -> "mx.example.net" (Postfix's relay=), "dns; mx" -> "mx".
std::string remote_host(std::string_view relay);

}  // namespace preflight
