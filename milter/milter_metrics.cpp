#include "milter_metrics.hpp"

#include <algorithm>
#include <stdexcept>
#include <string>

#include "reply_table.hpp"

namespace preflight {

namespace {

template <std::size_t N>
std::size_t index_of(const std::array<std::string_view, N>& names, std::string_view name) {
    for (std::size_t i = 0; i + 1 < N; ++i)
        if (names[i] == name) return i;
    return N - 1;  // the catch-all last entry
}

std::size_t result_index(const Verdict& v) {
    if (v.dry_run) return 4;
    return static_cast<std::size_t>(v.action);  // accept, reject, tempfail, tag: the enum order
}

}  // namespace

MilterMetrics::MilterMetrics() {
    auto add = [&](int code) {
        if (std::find(codes_.begin(), codes_.begin() + static_cast<std::ptrdiff_t>(n_codes_), code) !=
            codes_.begin() + static_cast<std::ptrdiff_t>(n_codes_))
            return;
        if (n_codes_ + 1 >= kMaxCodes) throw std::logic_error("MilterMetrics: more reply codes than kMaxCodes");
        codes_[n_codes_++] = code;
    };
    for (const ReplyRow& row : reply_table()) {
        add(row.code);
        add(row.temp_code);
    }
    std::sort(codes_.begin(), codes_.begin() + static_cast<std::ptrdiff_t>(n_codes_));
}

std::size_t MilterMetrics::code_index(int code) const noexcept {
    for (std::size_t i = 0; i < n_codes_; ++i)
        if (codes_[i] == code) return i;
    return n_codes_;
}

void MilterMetrics::count_decision(const Verdict& v) noexcept {
    decisions_[slot(index_of(kChecks, v.check), result_index(v), code_index(reply_code(v)))].inc();
}

std::uint64_t MilterMetrics::decisions(std::string_view check, std::string_view result, int code) const {
    std::size_t r = 0;
    while (r < kResults.size() && kResults[r] != result) ++r;
    if (r == kResults.size()) return 0;
    return decisions_[slot(index_of(kChecks, check), r, code_index(code))].value();
}

void MilterMetrics::register_with(metrics::Registry& r, std::function<double()> cache_entries) const {
    // Sparse: most check/result/code combinations cannot happen, so only those seen are shown.
    r.add_samples("preflight_milter_decisions_total",
                  "Decisions as logged, by check, result (accept, reject, tempfail, tag, dry-run) and reply code.",
                  metrics::Type::counter, [this](std::vector<metrics::Sample>& out) {
                      for (std::size_t c = 0; c < kChecks.size(); ++c)
                          for (std::size_t res = 0; res < kResults.size(); ++res)
                              for (std::size_t k = 0; k <= n_codes_; ++k) {
                                  std::uint64_t n = decisions_[slot(c, res, k)].value();
                                  if (n == 0) continue;
                                  out.push_back({{{"check", std::string(kChecks[c])},
                                                  {"result", std::string(kResults[res])},
                                                  {"code", k < n_codes_ ? std::to_string(codes_[k]) : "other"}},
                                                 static_cast<double>(n)});
                              }
                  });
    r.add("preflight_milter_connections", "MTA connections open now.", connections);
    r.add("preflight_milter_connections_total", "MTA connections accepted.", connections_total);
    r.add("preflight_milter_transactions", "Transactions (MAIL FROM to end of message) in flight now.", transactions);
    r.add("preflight_milter_transactions_total", "Transactions started.", transactions_total);
    r.add("preflight_milter_reloads_total", "Configuration reloads (SIGHUP), by result.", reloads_ok,
          {{"result", "ok"}});
    r.add("preflight_milter_reloads_total", "Configuration reloads (SIGHUP), by result.", reloads_failed,
          {{"result", "failed"}});
    dns.register_with(r, std::move(cache_entries));
}

}  // namespace preflight
