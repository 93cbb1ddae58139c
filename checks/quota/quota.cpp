// Sending quotas: subjects, counters, verdicts (see quota.hpp). The stores are in
// quota_sqlite.cpp and quota_redis.cpp.
#include "quota.hpp"

#include "ascii.hpp"
#include "plan_period.hpp"

#include <algorithm>

namespace preflight {

std::string quota_subject(QuotaPer per, std::string_view sender, std::string_view domain, std::string_view login) {
    if (sender.empty() || domain.empty()) return {};  // the null sender: bounces are not quota'd
    std::string out;
    if (per == QuotaPer::login && !login.empty()) {
        out = "login:";
        out += login;
        return out;
    }
    if (per == QuotaPer::domain) {
        out = "domain:";
        out += ascii::to_lower(domain);
        return out;
    }
    out = "sender:";  // per sender, and per login without a login (unauthenticated clients)
    out += ascii::to_lower(sender);
    return out;
}

std::string quota_subject_text(std::string_view subject) {
    auto colon = subject.find(':');
    if (colon == std::string_view::npos) return std::string(subject);
    std::string_view kind = subject.substr(0, colon), rest = subject.substr(colon + 1);
    if (kind == "login" || kind == "tenant") {
        std::string out(kind);
        out += ' ';
        out += rest;
        return out;
    }
    return std::string(rest);
}

std::string quota_key(std::string_view subject, std::string_view unit, QuotaWindow window) {
    std::string key;
    key.reserve(subject.size() + 20);
    key.append(subject).append("|").append(unit).append("|").append(to_string(window));
    return key;
}

std::optional<QuotaKey> parse_quota_key(std::string_view key) {
    const std::size_t bar1 = key.find('|'), bar2 = key.rfind('|');
    if (bar1 == std::string_view::npos || bar2 == bar1) return std::nullopt;
    QuotaKey k{std::string(key.substr(0, bar1)), std::string(key.substr(bar1 + 1, bar2 - bar1 - 1))};
    const std::string_view window = key.substr(bar2 + 1);
    for (QuotaWindow w :
         {QuotaWindow::minute, QuotaWindow::hour, QuotaWindow::day, QuotaWindow::week, QuotaWindow::month})
        if (to_string(w) == window) {
            k.window = w;
            return k;
        }
    return std::nullopt;
}

bool is_period_key(std::string_view key) { return key.ends_with("|week") || key.ends_with("|month"); }

std::vector<QuotaCounter> quota_counters(const Settings& s, std::string_view subject, bool first_recipient,
                                         std::int64_t now_ms, const TimeZone* zone) {
    std::vector<QuotaCounter> out;
    static const TimeZone utc = TimeZone::utc();
    auto add = [&](const std::vector<QuotaRate>& rates, std::string_view unit) {
        for (const QuotaRate& r : rates) {
            QuotaCounter c;
            c.key = quota_key(subject, unit, r.window);
            c.window = r.window;
            c.limit = r.limit;
            c.amount = 1;
            if (is_plan_period(r.window)) {
                PeriodSpan p = plan_period_at(r.window, now_ms / 1000, zone ? *zone : utc, s.billing_day);
                c.period_start_s = p.start_s;
                c.period_end_s = p.end_s;
            }
            out.push_back(std::move(c));
        }
    };
    add(s.quota_recipients, "recipients");
    if (first_recipient) add(s.quota_messages, "messages");
    return out;
}

std::string duration_words(std::int64_t seconds) {
    if (seconds < 1) seconds = 1;
    if (seconds < 60) return std::to_string(seconds) + " s";
    std::int64_t minutes = (seconds + 59) / 60;
    if (minutes < 60) return std::to_string(minutes) + " min";
    std::int64_t h = minutes / 60, m = minutes % 60;
    std::string out = std::to_string(h);
    out += " h";
    if (m) out.append(" ").append(std::to_string(m)).append(" min");
    return out;
}

std::string grouped_number(std::uint64_t n) {
    std::string digits = std::to_string(n), out;
    for (std::size_t i = 0; i < digits.size(); ++i) {
        if (i && (digits.size() - i) % 3 == 0) out += ',';
        out += digits[i];
    }
    return out;
}

namespace {
Verdict plan_verdict(const QuotaResult& r, const QuotaCounter& c, std::string_view unit, std::string_view subject,
                     int quota_code, const TimeZone* zone) {
    ReplyArgs a;
    a.period = c.window == QuotaWindow::week ? "Weekly" : "Monthly";
    a.limit = grouped_number(c.limit);
    a.unit = std::string(unit);
    a.subject = quota_subject_text(subject);
    a.used = grouped_number(r.used[static_cast<std::size_t>(r.over)]);
    a.renews = local_time_text(c.period_end_s, zone ? *zone : TimeZone::utc());
    return quota_code == 550 ? Verdict::reject(check_name::quota, ReplyId::plan_exceeded_perm, std::move(a))
                             : Verdict::tempfail(check_name::quota, ReplyId::plan_exceeded_temp, std::move(a));
}
}  // namespace

Verdict quota_verdict(const QuotaResult& r, std::span<const QuotaCounter> counters, std::string_view subject,
                      int quota_code, QuotaStoreErrorAction on_error, const TimeZone* zone) {
    if (!r.ok) {
        ReplyArgs a;
        a.reason = r.error;
        Verdict v = Verdict::tempfail(check_name::quota, ReplyId::quota_store_failure, std::move(a));
        if (on_error == QuotaStoreErrorAction::accept) {
            // An accept that carries the reply, for the log: the recipient goes uncounted.
            v.action = v.decided = v.would = Verdict::Action::accept;
        }
        return v;
    }
    if (r.over < 0 || static_cast<std::size_t>(r.over) >= counters.size()) return Verdict::accept(check_name::quota);
    const QuotaCounter& c = counters[static_cast<std::size_t>(r.over)];
    ReplyArgs a;
    a.limit = std::to_string(c.limit);
    auto bar = c.key.find('|');
    auto bar2 = c.key.find('|', bar + 1);
    a.unit = bar == std::string::npos ? "recipients" : c.key.substr(bar + 1, bar2 - bar - 1);
    if (is_plan_period(c.window) && r.used.size() == counters.size())
        return plan_verdict(r, c, a.unit, subject, quota_code, zone);
    a.window = std::string(to_string(c.window));
    a.subject = quota_subject_text(subject);
    a.retry = duration_words(r.retry_seconds);
    return quota_code == 550 ? Verdict::reject(check_name::quota, ReplyId::quota_exceeded_perm, std::move(a))
                             : Verdict::tempfail(check_name::quota, ReplyId::quota_exceeded_temp, std::move(a));
}

std::int64_t quota_retry_seconds(std::vector<std::pair<std::int64_t, std::uint64_t>> live, std::uint64_t used,
                                 std::uint32_t amount, std::uint32_t limit, QuotaWindow window, std::int64_t now_ms) {
    std::sort(live.begin(), live.end());
    std::uint64_t excess = used + amount > limit ? used + amount - limit : 0;
    std::uint64_t freed = 0;
    const std::int64_t g = bucket_seconds(window);
    for (const auto& [bucket, n] : live) {
        freed += n;
        if (freed >= excess) {
            std::int64_t leaves_ms = (bucket + kQuotaBuckets) * g * 1000;
            return std::max<std::int64_t>(1, (leaves_ms - now_ms + 999) / 1000);
        }
    }
    return window_seconds(window);  // the amount alone is above the limit
}

}  // namespace preflight
