// Notices when a subject's usage crosses a share of a quota (QuotaNoticeShares, 80 % and 100 %
// by default): one log line per crossing, and a counter per share and window or period kind,
// so /metrics stays one series per (share, kind) however many tenants there are.
//
// A crossing is seen by the one reservation that takes the usage from below the share to at
// or above it: reserve() is atomic in the store, so across relays it is logged once (unless a
// reservation is given back and the share crossed again).
#pragma once

#include <array>
#include <atomic>
#include <cstdint>
#include <span>
#include <string>
#include <vector>

#include "metrics.hpp"
#include "quota.hpp"

namespace preflight {

struct QuotaCrossing {
    std::size_t counter = 0;  // index into the counters
    unsigned share = 0;       // percent
    std::uint64_t used = 0;   // after the reservation
};

// The shares (percent, 0 ends the list) a reservation crossed: used[i] before, plus amount.
std::vector<QuotaCrossing> quota_crossings(std::span<const QuotaCounter> counters, const QuotaResult& r,
                                           std::span<const std::uint8_t> shares);

class QuotaNotices {
public:
    void count(unsigned share, QuotaWindow w) noexcept;
    std::uint64_t count_of(unsigned share, QuotaWindow w) const noexcept;
    // preflight_quota_notices_total{share="80",window="month"}: only the pairs seen so far.
    void register_with(metrics::Registry& r) const;

private:
    static constexpr std::size_t kWindows = 5;
    std::array<std::atomic<std::uint64_t>, 101 * kWindows> counts_{};
};

}  // namespace preflight
