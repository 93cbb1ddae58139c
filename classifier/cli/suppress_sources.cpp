#include "suppress_sources.hpp"

#include <ctime>
#include <iostream>

#include "ascii.hpp"
#include "trace_header.hpp"

namespace preflight {
namespace {

constexpr int kMaxReported = 10;

// The address inside "rfc822; <alice@example.org>" or "<alice@example.org>".
std::string field_address(std::string_view v) {
    if (auto semi = v.find(';'); semi != std::string_view::npos) v = v.substr(semi + 1);
    return normalise_recipient(v);
}

// Who sent the message that bounced: the report's own fields first (ARF, Postfix), then the
// returned message's Return-Path, then the bounce's To: (a DSN goes to the envelope sender).
std::string original_sender(const BounceReport& report, std::string_view raw) {
    for (std::string_view name : {"Original-Mail-From", "X-Postfix-Sender"})
        if (std::string a = field_address(find_field(raw, name)); !a.empty()) return a;
    std::size_t pos = 0;
    while (pos < raw.size()) {  // every Return-Path: the bounce's own is <> and skipped
        std::size_t nl = raw.find('\n', pos);
        std::string_view line = raw.substr(pos, nl == std::string_view::npos ? std::string_view::npos : nl - pos);
        if (ascii::istarts_with(line, "Return-Path:"))
            if (std::string a = normalise_recipient(line.substr(12)); !a.empty()) return a;
        if (nl == std::string_view::npos) break;
        pos = nl + 1;
    }
    if (report.kind != ReportKind::feedback_report) return normalise_recipient(find_field(raw, "To"));
    return {};
}

// "smtp; 550 5.1.1 ..." -> "550 5.1.1 ...": the reply, not RFC 3464's diagnostic type.
std::string_view without_diagnostic_type(std::string_view d) {
    std::size_t semi = d.find(';');
    if (semi == std::string_view::npos || semi >= 16) return d;
    for (std::size_t i = 0; i < semi; ++i)
        if (!ascii::is_alnum(d[i]) && d[i] != '-') return d;
    d.remove_prefix(semi + 1);
    while (!d.empty() && d.front() == ' ') d.remove_prefix(1);
    return d;
}

}  // namespace

std::string find_field(std::string_view message, std::string_view name) {
    std::size_t pos = 0;
    while (pos < message.size()) {
        std::size_t nl = message.find('\n', pos);
        std::string_view line = message.substr(pos, nl == std::string_view::npos ? std::string_view::npos : nl - pos);
        if (line.size() > name.size() && line[name.size()] == ':' && ascii::istarts_with(line, name)) {
            std::string_view v = line.substr(name.size() + 1);
            while (!v.empty() && ascii::is_space(v.front())) v.remove_prefix(1);
            while (!v.empty() && ascii::is_space(v.back())) v.remove_suffix(1);
            return std::string(v);
        }
        if (nl == std::string_view::npos) break;
        pos = nl + 1;
    }
    return {};
}

void SuppressSink::feed(const FailureEvent& e) {
    std::string error;
    if (feed_->feed(e, &error)) return;
    if (++reported_ <= kMaxReported) std::cerr << "preflight-classify: suppression: " << error << "\n";
}

void SuppressSink::delivery(const DeliveryRow& row) {
    if (row.status != Status::bounce && row.status != Status::expired && row.status != Status::deferred) return;
    std::lock_guard lock(mutex_);
    FailureEvent e;
    e.sender = row.sender;
    e.recipient = row.recipient;
    e.category = to_string(row.category);
    e.permanent = row.status != Status::deferred;
    // Postfix appends where the reply came: the remote's own words are what the sender reads.
    std::string_view reply = row.message;
    if (auto in = reply.rfind(" (in reply to "); in != std::string_view::npos && reply.ends_with(" command)"))
        reply = reply.substr(0, in);
    e.reply = reply;
    std::string host = remote_host(row.relay);
    e.remote_mta = host;
    e.source = SuppressionSource::log;
    e.time = row.time.instant();
    feed(e);
}

void SuppressSink::bounce(const BounceReport& report, const std::vector<BounceVerdict>& verdicts, std::string_view raw,
                          std::string_view sender_override, std::int64_t now) {
    // Delay warnings and auto-replies say nothing final about the recipient.
    if (report.delay_notice || report.kind == ReportKind::auto_reply) return;
    const bool complaint = report.kind == ReportKind::feedback_report;
    if (complaint) {
        std::string type = ascii::to_lower(find_field(raw, "Feedback-Type"));
        if (!type.empty() && type != "abuse" && type != "fraud") return;  // not-spam, auth-failure, virus...
    }
    std::string sender = sender_override.empty() ? original_sender(report, raw) : normalise_recipient(sender_override);
    std::optional<std::pair<std::string, std::string>> traced;
    std::lock_guard lock(mutex_);
    if (complaint)
        if (std::optional<std::string> token = parse_trace_token(find_field(raw, kTraceHeader))) {
            std::string error;
            traced = feed_->store().find_trace(*token, now, &error);
            if (!error.empty() && ++reported_ <= kMaxReported)
                std::cerr << "preflight-classify: suppression: " << error << "\n";
        }
    const std::int64_t when = report.has_date ? report.date : now;
    for (const BounceVerdict& v : verdicts) {
        const BounceRecipient& r = *v.recipient;
        if (r.action == "delayed" || r.action == "delivered" || r.action == "relayed" || r.action == "expanded")
            continue;
        FailureEvent e;
        e.sender = sender;
        e.recipient = r.recipient;
        e.category = to_string(v.category);
        e.permanent = v.status == Status::bounce || v.status == Status::expired;
        e.complaint = complaint;
        e.reply = without_diagnostic_type(v.diagnostic);
        std::string host = remote_host(complaint ? report.reporting_mta : r.remote_mta);
        e.remote_mta = host;
        e.source = complaint ? SuppressionSource::complaint : SuppressionSource::bounce;
        e.time = when;
        // The token names the one recipient of the message complained about: it wins over what
        // the report names, which feedback loops redact ("redacted@", "xxxx", nothing).
        if (traced) {
            e.recipient = traced->second;
            e.traced_scope = traced->first;
            feed(e);
            return;
        }
        feed(e);
    }
}

void SuppressSink::summary() {
    std::lock_guard lock(mutex_);
    const FeedCounts& c = feed_->counts();
    std::cerr << "preflight-classify: suppression (" << feed_->store().describe() << "): " << c.suppressed
              << " suppressed, " << c.counted << " counted, " << c.sender_faults << " sender faults, " << c.ignored
              << " ignored, " << c.errors << " store errors\n";
}

bool SuppressSink::failed() const {
    std::lock_guard lock(mutex_);
    return feed_->counts().errors > 0;
}

}  // namespace preflight
