#include "suppression.hpp"

#include <algorithm>
#include <array>
#include <charconv>
#include <ctime>

#include "ascii.hpp"

namespace preflight {
namespace {

constexpr std::array<std::string_view, 4> kSources = {"log", "bounce", "complaint", "manual"};
constexpr std::array<std::string_view, 4> kOutcomes = {"suppress", "soft-failure", "sender-fault", "none"};

// The recipient's fault, for good: the address, its domain or its mailbox is gone.
constexpr std::array<std::string_view, 3> kRecipientFault = {"bad-mailbox", "bad-domain", "inactive-mailbox"};
// The sender's or the relay's fault: another recipient would have been refused as well.
constexpr std::array<std::string_view, 8> kSenderFault = {"spam-related",      "policy-related",  "invalid-sender",
                                                          "bad-configuration", "relaying-issues", "content-related",
                                                          "virus-related",     "protocol-errors"};

bool listed(std::string_view v, std::span<const std::string_view> list) {
    return std::find(list.begin(), list.end(), v) != list.end();
}

std::int64_t seconds(std::chrono::milliseconds d) { return d.count() / 1000; }

}  // namespace

std::string_view to_string(SuppressionSource s) { return kSources[static_cast<std::size_t>(s)]; }

std::optional<SuppressionSource> parse_suppression_source(std::string_view s) {
    for (std::size_t i = 0; i < kSources.size(); ++i)
        if (kSources[i] == s) return static_cast<SuppressionSource>(i);
    return std::nullopt;
}

std::string_view to_string(SuppressionOutcome o) { return kOutcomes[static_cast<std::size_t>(o)]; }

SuppressionOutcome suppression_outcome(std::string_view category, bool permanent, bool complaint, const Settings& s) {
    if (complaint) return s.suppress_complaints ? SuppressionOutcome::suppress : SuppressionOutcome::none;
    if (listed(category, kSenderFault)) return SuppressionOutcome::sender_fault;
    // A full mailbox may empty: deferred or bounced, each failure only counts towards the threshold.
    if (category == "quota-issues") return SuppressionOutcome::soft_failure;
    // A deferral saying "user unknown" is not final: the next attempt decides.
    if (listed(category, kRecipientFault)) return permanent ? SuppressionOutcome::suppress : SuppressionOutcome::none;
    return SuppressionOutcome::none;
}

std::optional<SuppressionRecord> suppression_record(SuppressionOutcome o, std::string_view sender_domain,
                                                    std::string_view recipient, std::string_view category,
                                                    std::string_view reply, std::string_view remote_mta,
                                                    SuppressionSource source, const Settings& s, std::int64_t now) {
    if (o != SuppressionOutcome::suppress && o != SuppressionOutcome::soft_failure) return std::nullopt;
    SuppressionRecord r;
    r.entry.scope = suppression_scope(s.suppression_scope, sender_domain);
    r.entry.recipient = normalise_recipient(recipient);
    if (r.entry.recipient.empty() || r.entry.scope.empty()) return std::nullopt;
    r.entry.category = source == SuppressionSource::complaint ? std::string("complaint") : std::string(category);
    r.entry.reply = sanitise_remote_text(reply);
    r.entry.remote_mta = sanitise_remote_text(remote_mta, 100);
    r.entry.source = source;
    r.now = now;
    r.expiry = seconds(source == SuppressionSource::complaint ? s.suppression_complaint_expiry : s.suppression_expiry);
    if (o == SuppressionOutcome::soft_failure) {
        r.threshold = s.suppression_quota_failures;
        r.period = seconds(s.suppression_quota_period);
    }
    return r;
}

SuppressionEntry merge_suppression(const std::optional<SuppressionEntry>& existing, const SuppressionRecord& r) {
    const std::int64_t now = r.now;
    const bool immediate = r.threshold <= 1;
    std::optional<SuppressionEntry> live = existing;
    if (live && live->expired(now)) live.reset();
    // Soft failures are counted from the first one: a pending entry expires one period after it,
    // so a failure after that starts afresh.

    SuppressionEntry e = r.entry;
    e.first_seen = live ? live->first_seen : now;
    e.last_seen = now;
    e.count = (live ? live->count : 0) + 1;
    if (live && live->active) {
        e.active = true;
        if (!immediate) {  // a full mailbox after a hard failure: the entry keeps its reason and expiry
            SuppressionEntry kept = *live;
            kept.last_seen = now;
            kept.count = e.count;
            return kept;
        }
    } else {
        e.active = immediate || e.count >= r.threshold;
    }
    if (e.active) e.expires = r.expiry > 0 ? now + r.expiry : 0;
    else e.expires = e.first_seen + r.period;  // pending counts vanish with their period
    return e;
}

std::string normalise_recipient(std::string_view address) {
    while (!address.empty() && (ascii::is_space(address.front()) || address.front() == '<')) address.remove_prefix(1);
    while (!address.empty() && (ascii::is_space(address.back()) || address.back() == '>')) address.remove_suffix(1);
    if (!address.empty() && address.back() == '.') address.remove_suffix(1);
    auto at = address.rfind('@');
    if (at == std::string_view::npos || at == 0 || at + 1 == address.size() || address.size() > 320) return {};
    std::string out;
    out.reserve(address.size());
    for (char c : address) {
        if (static_cast<unsigned char>(c) < 0x21 || c == 0x7f) return {};  // blanks or controls inside
        out += ascii::lower(c);
    }
    return out;
}

std::string suppression_scope(SuppressionScope scope, std::string_view sender_domain) {
    if (scope == SuppressionScope::global) return std::string(kGlobalScope);
    if (!sender_domain.empty() && sender_domain.back() == '.') sender_domain.remove_suffix(1);
    std::string out;
    for (char c : sender_domain) out += ascii::lower(c);
    return out;
}

std::string sanitise_remote_text(std::string_view text, std::size_t max) {
    std::string out;
    out.reserve(std::min(text.size(), max));
    for (char c : text) {
        auto u = static_cast<unsigned char>(c);
        if (u == ' ' || u == '\t' || u == '\r' || u == '\n') {
            if (!out.empty() && out.back() != ' ') out += ' ';
        } else if (u < 0x20 || u == 0x7f) {
            continue;
        } else {
            out += u < 0x80 ? c : '?';
        }
        if (out.size() > max) break;
    }
    if (out.size() > max) {
        out.resize(max);
        auto space = out.rfind(' ');
        if (space != std::string::npos && space > max / 2) out.resize(space);
    }
    while (!out.empty() && out.back() == ' ') out.pop_back();
    return out;
}

bool matches(const SuppressionFilter& f, const SuppressionEntry& e, std::int64_t now) {
    if (!f.include_pending && !e.active) return false;
    if (!f.include_expired && e.expired(now)) return false;
    if (!f.scope.empty() && f.scope != e.scope) return false;
    if (!f.category.empty() && f.category != e.category) return false;
    if (!f.recipient.empty() && f.recipient != e.recipient) return false;
    if (f.since != 0 && e.last_seen < f.since) return false;
    if (f.until != 0 && e.last_seen >= f.until) return false;
    return true;
}

Verdict suppression_verdict(const SuppressionLookup& l, std::string_view address,
                            SuppressionStoreErrorAction on_error) {
    ReplyArgs a;
    if (!l.ok) {
        a.reason = l.error;
        Verdict v = Verdict::tempfail(check_name::suppression, ReplyId::suppression_unavailable, std::move(a));
        // An accept that carries the reply, for the log: the recipient goes unchecked.
        if (on_error == SuppressionStoreErrorAction::accept) v.action = v.decided = v.would = Verdict::Action::accept;
        return v;
    }
    if (!l.entry) return Verdict::accept(check_name::suppression);
    const SuppressionEntry& e = *l.entry;
    if (address.starts_with('<') && address.ends_with('>')) address = address.substr(1, address.size() - 2);
    a.address = std::string(address.substr(0, 320));
    a.subject = e.scope == kGlobalScope ? std::string("every sender") : e.scope;
    a.since = utc_date(e.first_seen);
    a.reason = e.reply;
    a.remote_mta = e.remote_mta;
    ReplyId id = ReplyId::recipient_suppressed;
    if (e.source == SuppressionSource::complaint) id = ReplyId::suppressed_by_complaint;
    else if (e.source == SuppressionSource::manual || e.reply.empty()) id = ReplyId::suppressed_by_operator;
    return Verdict::reject(check_name::suppression, id, std::move(a));
}

std::string utc_date(std::int64_t unix_seconds) { return utc_time(unix_seconds).substr(0, 10); }

std::string utc_time(std::int64_t unix_seconds) {
    std::time_t t = static_cast<std::time_t>(unix_seconds);
    std::tm tm{};
    gmtime_r(&t, &tm);
    char buf[32];
    std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", &tm);
    return buf;
}

std::optional<std::int64_t> parse_utc(std::string_view text) {
    // YYYY-MM-DD, optionally followed by THH:MM:SS and Z.
    auto num = [&](std::size_t at, std::size_t len) -> std::optional<int> {
        int v = 0;
        if (at + len > text.size()) return std::nullopt;
        auto [p, ec] = std::from_chars(text.data() + at, text.data() + at + len, v);
        if (ec != std::errc() || p != text.data() + at + len) return std::nullopt;
        return v;
    };
    if (text.size() != 10 && text.size() != 20) return std::nullopt;
    std::tm tm{};
    auto y = num(0, 4), mo = num(5, 2), d = num(8, 2);
    if (!y || !mo || !d || text[4] != '-' || text[7] != '-') return std::nullopt;
    if (*mo < 1 || *mo > 12 || *d < 1 || *d > 31) return std::nullopt;
    tm.tm_year = *y - 1900;
    tm.tm_mon = *mo - 1;
    tm.tm_mday = *d;
    if (text.size() == 20) {
        auto h = num(11, 2), mi = num(14, 2), s = num(17, 2);
        if (text[10] != 'T' || text[13] != ':' || text[16] != ':' || text[19] != 'Z' || !h || !mi || !s)
            return std::nullopt;
        if (*h > 23 || *mi > 59 || *s > 60) return std::nullopt;
        tm.tm_hour = *h;
        tm.tm_min = *mi;
        tm.tm_sec = *s;
    }
    return static_cast<std::int64_t>(timegm(&tm));
}

}  // namespace preflight
