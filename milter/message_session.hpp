// MessageSession: what preflight-milter decides for one SMTP transaction, as plain method
// calls (MAIL FROM, RCPT TO, headers, body chunks, end of message) returning verdicts. It
// knows nothing of libmilter: milter/preflight_milter.cpp copies what libmilter hands over
// into these calls and turns verdicts into replies, so every decision is testable (and
// fuzzable) without an MTA. Checks run at the earliest stage that has their input.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "auth_policy.hpp"
#include "auth_results.hpp"
#include "config.hpp"
#include "dkim_check.hpp"
#include "dns.hpp"
#include "dmarc.hpp"
#include "message_headers.hpp"
#include "quota.hpp"
#include "quota_notices.hpp"
#include "tenants.hpp"
#include "reply_table.hpp"
#include "suppression.hpp"
#include "verdict.hpp"

namespace preflight {

// Process-wide, read-only while sessions run.
struct MilterServices {
    std::shared_ptr<const Config> config;
    Resolver* resolver = nullptr;          // the caching resolver: the one DNS path
    std::vector<std::string> egress_ips;   // EgressAddresses as text, for SPF and replies
    QuotaStore* quota_store = nullptr;     // null: no Domain or default sets a quota
    std::function<std::int64_t()> now_ms;  // quota clock (unix ms); empty: the system clock
    // Keep every verdict a check returns, accepts included (decisions()): for --test-message,
    // which prints each one; the milter leaves it off.
    bool record_decisions = false;

    // Plans and tenants.
    std::shared_ptr<const TimeZone> plan_zone;   // PlanTimeZone for week/month quotas; null: UTC
    std::shared_ptr<const TenantTable> tenants;  // TenantsFile; null: none
    QuotaNotices* quota_notices = nullptr;       // QuotaNoticeShares crossings are counted here; null: not

    // Suppression: the store (null when SuppressionMode is off everywhere), the counters of
    // /metrics (may be null), SuppressionTraceKeyFile's key ("": no trace header).
    SuppressionStore* suppression_store = nullptr;
    SuppressionCounters* suppression_counters = nullptr;
    std::string trace_key;
};

class MessageSession {
public:
    explicit MessageSession(const MilterServices& services);
    ~MessageSession();
    MessageSession(const MessageSession&) = delete;
    MessageSession& operator=(const MessageSession&) = delete;

    // esmtp_args: the MAIL FROM parameters ("SIZE=1000", "SMTPUTF8", "BODY=8BITMIME");
    // login: the SASL login ({auth_authen}), "" when the client did not authenticate.
    Verdict mail_from(std::string_view path, const std::vector<std::string_view>& esmtp_args,
                      std::string_view login = {});
    Verdict rcpt_to(std::string_view path);
    void header(std::string_view name, std::string_view value);
    void end_of_headers();
    // A refusal decided here is also kept and returned again by end_of_message(), so the glue
    // may answer body chunks with "no reply" and refuse at the end (the client sees the reply
    // after its final dot either way).
    Verdict body(std::string_view chunk);
    // The last decision: authentication (when it needs the message) and the size. The quota
    // reserved at RCPT TO is kept when the message is accepted and given back otherwise; a
    // session destroyed before (abort, closed connection) gives it back too.
    Verdict end_of_message();
    // Headers to add for checks in tag mode, collected over the transaction.
    const std::vector<TagHeader>& tag_headers() const { return tag_headers_; }
    // Decisions that let the message through but must be logged (tag mode, dry-run), since
    // the last call; the stage's returned verdict is the plain accept.
    std::vector<Verdict> take_notes() { return std::exchange(notes_, {}); }

    const std::string& sender() const { return sender_; }
    const std::string& sender_domain() const { return domain_; }
    unsigned accepted_recipients() const { return recipients_; }
    std::uint64_t size() const { return size_; }
    double dns_ms() const { return dns_ms_; }
    // What this transaction holds of the quota store (for tests and the log).
    const std::vector<QuotaHeld>& quota_held() const { return quota_held_; }
    // Every verdict of a check that ran, in order, after its mode (MilterServices::record_decisions).
    const std::vector<Verdict>& decisions() const { return decisions_; }
    // The tenant of the transaction (TenantsFile), or nullptr.
    const Tenant* tenant() const { return tenant_; }

private:
    Verdict finish(Verdict v, CheckMode mode);  // apply mode and dry-run, collect tag headers
    Verdict decide_auth_now();
    AuthContext auth_context() const;  // what the AuthPolicy replies name
    Verdict check_quota(const Settings& s);
    Verdict check_suppression(const Settings& s, std::string_view address);
    void add_trace_header();
    std::int64_t now_ms() const;
    void release_quota() noexcept;
    // The message checks at end of message (checks/message/): header sanity, DMARC record,
    // alignment, one-click unsubscribe, each under its own mode; the first refusal is returned.
    Verdict check_message();
    // The From domain the DMARC and alignment checks judge: the one mailbox of the one From
    // header; empty when there is none (the header sanity check's business). Read once, when
    // the headers are complete.
    const std::string& single_from_domain();
    // The independent lookups of the message's checks at once, at the end of the headers
    // (everything they need is known there): the keys of the message's DKIM signatures, the
    // relay's key at DkimSelectors, the DMARC records. The checks then read them from the
    // cache, so the message waits about one round trip, not one per lookup; and with the end
    // of headers unanswered (SMFIP_NR_EOH) that round trip overlaps the body's transfer.
    void prefetch_message_lookups();
    // The questions of one stage at once, through the cache, when there are several; the wait
    // counts in dns_ms() (the checks that follow read the answers from the cache, at no cost).
    void ask_at_once(std::span<const DnsQuestion> stage);
    Verdict decide_alignment(const std::string& from_domain, const DmarcRecord& record);
    const std::vector<DkimSignatureInfo>& message_signatures();
    void notice_crossings(std::span<const QuotaCounter> counters, const QuotaResult& r);

    const MilterServices& services_;
    const Settings* settings_ = nullptr;  // effective settings for the sender domain
    std::string sender_, domain_;
    bool null_sender_ = false;
    bool prefetched_ = false;  // prefetch_message_lookups() ran
    std::optional<std::string> from_domain_;  // single_from_domain(), once read
    bool address_literal_ = false;
    unsigned recipients_ = 0;
    std::uint64_t size_ = 0;
    bool size_refused_ = false;
    std::optional<Verdict> size_refusal_;
    double dns_ms_ = 0;
    std::optional<SpfOutcome> spf_;
    bool auth_decided_ = false;
    std::unique_ptr<DkimVerifier> dkim_;
    std::vector<TagHeader> tag_headers_;
    std::vector<Verdict> notes_;
    std::string login_;
    std::string quota_subject_;
    bool quota_message_counted_ = false;
    std::vector<QuotaHeld> quota_held_;
    bool message_checks_ = false;  // some message check is on for this sender: headers are kept
    MessageHeaders headers_;
    std::vector<Verdict> decisions_;
    const Tenant* tenant_ = nullptr;
    std::string accepted_recipient_;  // normalised, for the trace header of a single-recipient message
};

}  // namespace preflight
