// `--suppress` of `log` and `dsn`: the classified failures they see, handed to the suppression
// list (checks/suppression/suppression_feed.hpp) under the conf named by --conf.
#pragma once

#include <memory>
#include <mutex>
#include <string>
#include <string_view>

#include "bounce_classifier.hpp"
#include "delivery_tracker.hpp"
#include "suppression_feed.hpp"

namespace preflight {

inline constexpr const char* kDefaultConf = "/etc/preflight/preflight.conf";

// A feed shared by the threads of `dsn` (one lock around it) and reporting its store errors on
// stderr (the first few one by one, then counted).
class SuppressSink {
public:
    explicit SuppressSink(std::unique_ptr<SuppressionFeed> feed) : feed_(std::move(feed)) {}

    // A final row of the Postfix log: bounced, expired or (at the end of input) still deferred.
    // Rejected rows are refusals at this relay's own edge (the milter's among them), never the
    // recipient's verdict, and are left out; so are sent rows.
    void delivery(const DeliveryRow& row);
    // One bounce or complaint message: raw is its text (for the trace header and the original
    // sender, which the parsed report does not keep); sender overrides the original sender.
    void bounce(const BounceReport& report, const std::vector<BounceVerdict>& verdicts, std::string_view raw,
                std::string_view sender, std::int64_t now);

    // "suppression: 3 suppressed, 1 counted, 0 sender faults, 2 ignored, 0 store errors" on stderr.
    void summary();
    bool failed() const;

private:
    void feed(const FailureEvent& e);

    mutable std::mutex mutex_;
    std::unique_ptr<SuppressionFeed> feed_;
    int reported_ = 0;
};

// A header or report field anywhere in a message's text ("Original-Mail-From"), at the start of a
// line, case-insensitive; its value trimmed (continuation lines not joined). "" when absent.
std::string find_field(std::string_view message, std::string_view name);

}  // namespace preflight
