#include "quota_notices.hpp"

namespace preflight {

std::vector<QuotaCrossing> quota_crossings(std::span<const QuotaCounter> counters, const QuotaResult& r,
                                           std::span<const std::uint8_t> shares) {
    std::vector<QuotaCrossing> out;
    if (!r.ok || !r.counted || r.used.size() != counters.size()) return out;
    for (std::size_t i = 0; i < counters.size(); ++i) {
        const QuotaCounter& c = counters[i];
        if (c.amount == 0 || c.limit == 0) continue;
        const std::uint64_t before = r.used[i], after = before + c.amount;
        for (std::uint8_t share : shares) {
            if (share == 0) break;
            // The smallest usage at or above the share: ceil(limit * share / 100).
            const std::uint64_t mark = (static_cast<std::uint64_t>(c.limit) * share + 99) / 100;
            if (before < mark && after >= mark) out.push_back({i, share, after});
        }
    }
    return out;
}

void QuotaNotices::count(unsigned share, QuotaWindow w) noexcept {
    const auto k = static_cast<std::size_t>(w);
    if (share <= 100 && k < kWindows) counts_[share * kWindows + k].fetch_add(1, std::memory_order_relaxed);
}

std::uint64_t QuotaNotices::count_of(unsigned share, QuotaWindow w) const noexcept {
    const auto k = static_cast<std::size_t>(w);
    return share <= 100 && k < kWindows ? counts_[share * kWindows + k].load(std::memory_order_relaxed) : 0;
}

void QuotaNotices::register_with(metrics::Registry& r) const {
    r.add_samples("preflight_quota_notices_total",
                  "reservations that took a quota's usage across a QuotaNoticeShares share, by share and window",
                  metrics::Type::counter, [this](std::vector<metrics::Sample>& out) {
                      for (unsigned share = 0; share <= 100; ++share)
                          for (std::size_t k = 0; k < kWindows; ++k) {
                              const std::uint64_t n = counts_[share * kWindows + k].load(std::memory_order_relaxed);
                              if (n == 0) continue;
                              out.push_back({{{"share", std::to_string(share)},
                                              {"window", std::string(to_string(static_cast<QuotaWindow>(k)))}},
                                             static_cast<double>(n)});
                          }
                  });
}

}  // namespace preflight
