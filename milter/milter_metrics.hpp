// What preflight-milter counts for /metrics (MetricsListen): every logged decision by check,
// result and reply code; MTA connections and transactions (open now and in all); reloads; and
// the DNS cache (DnsMetrics). One instance lives as long as the process, so the counters run
// on across reloads. Counting is a relaxed atomic add on a slot chosen by small linear scans
// over closed sets: no lock, no allocation.
#pragma once

#include <array>
#include <cstddef>
#include <functional>
#include <string_view>

#include "dns_metrics.hpp"
#include "metrics.hpp"
#include "verdict.hpp"

namespace preflight {

class MilterMetrics {
public:
    // check= of the log; a name not listed counts as "other".
    static constexpr std::array<std::string_view, 16> kChecks = {check_name::envelope,
                                                                 check_name::size,
                                                                 check_name::recipients,
                                                                 check_name::sender_domain,
                                                                 check_name::auth,
                                                                 check_name::quota,
                                                                 check_name::headers,
                                                                 check_name::dmarc,
                                                                 check_name::alignment,
                                                                 check_name::unsubscribe,
                                                                 check_name::recipient_domain,
                                                                 check_name::suppression,
                                                                 "all",
                                                                 "internal",
                                                                 "shutdown",
                                                                 "other"};
    // result= of the log: the action, or dry-run.
    static constexpr std::array<std::string_view, 5> kResults = {"accept", "reject", "tempfail", "tag", "dry-run"};
    static constexpr std::size_t kMaxCodes = 16;

    MilterMetrics();  // the reply codes: those of the reply table and their 4xx twins

    // One decision as log_decision() logs it: its check, result and reply code (250 for an
    // accept; the code that was or would have been sent for a refusal, tag or dry-run).
    void count_decision(const Verdict& v) noexcept;
    std::uint64_t decisions(std::string_view check, std::string_view result, int code) const;

    metrics::Gauge connections;  // MTA connections open
    metrics::Counter connections_total;
    metrics::Gauge transactions;  // MAIL FROM .. end of message or abort
    metrics::Counter transactions_total;
    metrics::Counter reloads_ok, reloads_failed;
    DnsMetrics dns;

    // Registers every preflight_milter_* and preflight_dns_* family; cache_entries reads the
    // current resolver's cache size.
    void register_with(metrics::Registry& r, std::function<double()> cache_entries) const;

private:
    std::size_t slot(std::size_t check, std::size_t result, std::size_t code) const {
        return (check * kResults.size() + result) * kMaxCodes + code;
    }
    std::size_t code_index(int code) const noexcept;  // n_codes_ (the "other" slot) if unknown

    std::array<int, kMaxCodes> codes_{};
    std::size_t n_codes_ = 0;  // < kMaxCodes: the last used slot is "other"
    std::array<metrics::Counter, kChecks.size() * kResults.size() * kMaxCodes> decisions_;
};

}  // namespace preflight
