#include "message_session.hpp"

#include "ascii.hpp"

#include "alignment.hpp"
#include "auth_policy.hpp"
#include "dmarc.hpp"
#include "dns_name.hpp"
#include "envelope_check.hpp"
#include "header_sanity.hpp"
#include "limits_check.hpp"
#include "logger.hpp"
#include "recipient_domain_check.hpp"
#include "sender_domain_check.hpp"
#include "spf_check.hpp"
#include "unsubscribe_check.hpp"
#include "trace_header.hpp"

#include <algorithm>
#include <chrono>

namespace preflight {

MessageSession::MessageSession(const MilterServices& services)
    : services_(services), settings_(&services.config->defaults()) {}

MessageSession::~MessageSession() { release_quota(); }

void MessageSession::release_quota() noexcept {
    if (quota_held_.empty() || !services_.quota_store) return;
    std::string error;
    if (!services_.quota_store->release(quota_held_, &error)) {
        try {
            Logger::log(Logger::Level::warning, "quota: could not give back the reservation of " + sender_ + " (" +
                                                    error + "); it stays counted until it ages out");
        } catch (...) {}
    }
    quota_held_.clear();
    quota_message_counted_ = false;
}

std::int64_t MessageSession::now_ms() const {
    if (services_.now_ms) return services_.now_ms();
    return std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::system_clock::now().time_since_epoch())
        .count();
}

// The recipient is looked up under the sender domain's scope and "*" on every RCPT TO (no cache:
// `suppress remove` takes effect on the next one). SuppressionMode maps onto the check modes:
// reject and tag as for any check, dry-run logs what reject would do.
Verdict MessageSession::check_suppression(const Settings& s, std::string_view address) {
    std::string recipient = normalise_recipient(address);
    if (recipient.empty()) return Verdict::accept(check_name::suppression);
    std::string scope = suppression_scope(SuppressionScope::domain, domain_);
    SuppressionLookup l = services_.suppression_store->lookup(scope, recipient, now_ms() / 1000);
    Verdict v = suppression_verdict(l, address, services_.config->global().on_suppression_store_error);
    SuppressionCounters* counters = services_.suppression_counters;
    if (!l.ok) {
        if (counters) counters->store_errors.inc();
        try {
            Logger::log(Logger::Level::warning, "suppression: store " + services_.suppression_store->describe() +
                                                    " did not answer for " + recipient + " (" + l.error + ")");
        } catch (...) {}
        if (v.accepted()) {  // OnSuppressionStoreError accept: logged, unchecked
            notes_.push_back(v);
            return Verdict::accept(check_name::suppression);
        }
        return finish(std::move(v), CheckMode::reject);
    }
    if (v.accepted()) return v;
    if (counters) (l.entry->scope == kGlobalScope ? counters->hits_global : counters->hits_domain).inc();
    if (s.suppression_mode == SuppressionMode::dry_run) {
        v = apply_mode(std::move(v), CheckMode::reject, true);
        notes_.push_back(v);
        return v;
    }
    return finish(std::move(v), s.suppression_mode == SuppressionMode::tag ? CheckMode::tag : CheckMode::reject);
}

// A single-recipient message carries a token a complaint can be traced back by (trace_header.hpp).
void MessageSession::add_trace_header() {
    if (services_.trace_key.empty() || recipients_ != 1 || accepted_recipient_.empty() || null_sender_ ||
        !services_.suppression_store)
        return;
    std::string token = trace_token(services_.trace_key, domain_, accepted_recipient_);
    std::string scope = suppression_scope(settings_->suppression_scope, domain_);
    std::string error;
    if (!services_.suppression_store->put_trace(token, scope, accepted_recipient_, now_ms() / 1000 + kTraceLifetime,
                                                &error)) {
        // The message goes on: a complaint about it will not be attributed, nothing else is lost.
        Logger::log(Logger::Level::warning, "suppression: trace token not stored (" + error + ")");
        return;
    }
    tag_headers_.push_back({std::string(kTraceHeader), token});
}

Verdict MessageSession::check_quota(const Settings& s) {
    if (quota_subject_.empty()) return Verdict::accept(check_name::quota);
    std::int64_t now =
        services_.now_ms
            ? services_.now_ms()
            : std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::system_clock::now().time_since_epoch())
                  .count();
    std::vector<QuotaCounter> counters =
        quota_counters(s, quota_subject_, !quota_message_counted_, now, services_.plan_zone.get());
    if (counters.empty()) return Verdict::accept(check_name::quota);
    // Dry-run and tag let the recipient through: count it even beyond the quota, so the
    // store shows what is really sent.
    bool force = s.mode == RunMode::dry_run || s.quota_mode == CheckMode::tag;
    QuotaResult r = services_.quota_store->reserve(counters, force, now);
    if (r.ok && r.counted) {
        for (std::size_t i = 0; i < counters.size(); ++i)
            quota_held_.push_back({counters[i].key, r.buckets[i], counters[i].amount});
        quota_message_counted_ = true;
        notice_crossings(counters, r);
    }
    Verdict v = quota_verdict(r, counters, quota_subject_, s.quota_code,
                              services_.config->global().on_quota_store_error, services_.plan_zone.get());
    if (!r.ok && v.accepted()) {  // OnQuotaStoreError accept: logged, not counted
        notes_.push_back(v);
        return Verdict::accept(check_name::quota);
    }
    return finish(std::move(v), s.quota_mode);
}

void MessageSession::notice_crossings(std::span<const QuotaCounter> counters, const QuotaResult& r) {
    const auto& shares = services_.config->global().quota_notice_percent;
    if (shares[0] == 0) return;
    for (const QuotaCrossing& x : quota_crossings(counters, r, shares)) {
        const QuotaCounter& c = counters[x.counter];
        if (services_.quota_notices) services_.quota_notices->count(x.share, c.window);
        std::optional<QuotaKey> k = parse_quota_key(c.key);
        Logger::log(Logger::Level::info,
                    "quota: " + quota_subject_text(quota_subject_) + " reached " + std::to_string(x.share) +
                        "% of its " + std::to_string(c.limit) + " " + (k ? k->unit : std::string("recipients")) +
                        " per " + std::string(to_string(c.window)) + " (" + std::to_string(x.used) + " used)");
    }
}

Verdict MessageSession::finish(Verdict v, CheckMode mode) {
    v = apply_mode(std::move(v), mode, settings_->mode == RunMode::dry_run);
    if (v.action == Verdict::Action::tag) tag_headers_.push_back(tag_header(v));
    if (v.accepted() && (v.action == Verdict::Action::tag || v.dry_run)) notes_.push_back(v);
    if (services_.record_decisions) decisions_.push_back(v);
    return v;
}

Verdict MessageSession::mail_from(std::string_view path, const std::vector<std::string_view>& esmtp_args,
                                  std::string_view login) {
    login_ = std::string(login.substr(0, 256));
    bool smtputf8 = false;
    std::optional<std::uint64_t> announced;
    for (std::string_view a : esmtp_args) {
        if (ascii::iequals(a, "SMTPUTF8")) smtputf8 = true;
        else if (ascii::istarts_with(a, "SIZE=")) announced = parse_size_param(a);
    }

    // Syntax first: without a parsable address there is no domain to look up.
    EnvelopeResult env = check_envelope_address(path, AddressRole::sender, smtputf8);
    if (!env.mailbox) {
        sender_ = std::string(path.substr(0, 256));
        // No domain to authenticate either: when the transaction goes on (EnvelopeSyntaxMode
        // tag or off, dry-run), the auth check must not run at end of message on an empty domain.
        auth_decided_ = true;
        return finish(std::move(env.verdict), settings_->envelope_syntax_mode);
    }
    null_sender_ = env.mailbox->null_path;
    sender_ = env.mailbox->address();
    domain_ = env.mailbox->domain;
    address_literal_ = env.mailbox->address_literal;
    if (!null_sender_ && !address_literal_) settings_ = &services_.config->for_sender_domain(domain_);
    // A tenant's plan replaces the domain's settings; its quotas count for the tenant.
    if (!null_sender_ && services_.tenants)
        if ((tenant_ = services_.tenants->find(login_, address_literal_ ? std::string_view() : domain_)))
            settings_ = &tenant_->settings;
    const Settings& s = *settings_;
    if (!null_sender_ && s.has_quota() && services_.quota_store)
        quota_subject_ = tenant_ ? "tenant:" + tenant_->name : quota_subject(s.quota_per, sender_, domain_, login_);

    if (s.size_mode != CheckMode::off) {
        Verdict v = finish(check_announced_size(announced, s.max_message_size), s.size_mode);
        if (!v.accepted()) return v;
    }
    // Bounces (null sender) and address literals have no domain to check.
    if (null_sender_ || address_literal_) {
        auth_decided_ = true;
        return Verdict::accept(check_name::envelope);
    }

    // The message checks read the headers; alignment and unsubscribe the message's signatures.
    message_checks_ = s.any_message_check();
    if (s.alignment_mode != CheckMode::off || s.unsubscribe_mode != CheckMode::off)
        dkim_ = std::make_unique<DkimVerifier>(*services_.resolver);
    // The stage's independent lookups at once (MX for the sender domain check, TXT for SPF):
    // the checks below then read them from the cache, so MAIL FROM waits about one round trip,
    // not one per lookup. libspf2's further lookups (include:, a:, mx:) follow the record.
    std::vector<DnsQuestion> stage;
    if (s.sender_domain_mode != CheckMode::off) stage.push_back({domain_, rrtype::MX});
    if (s.auth_mode != CheckMode::off && uses_spf(s.auth_policy)) stage.push_back({domain_, rrtype::TXT});
    ask_at_once(stage);

    if (s.sender_domain_mode != CheckMode::off) {
        SenderDomainOptions opts{s.unknown_domain_code, services_.config->global().on_dns_error};
        Verdict v = check_sender_domain(*services_.resolver, domain_, opts);
        dns_ms_ += v.dns_ms;
        v = finish(std::move(v), s.sender_domain_mode);
        if (!v.accepted()) return v;
    }

    if (s.auth_mode == CheckMode::off || s.auth_policy == AuthPolicy::off) {
        auth_decided_ = true;
        return Verdict::accept(check_name::auth);
    }
    if (uses_spf(s.auth_policy)) {
        spf_ = check_spf_for_egress(*services_.resolver, domain_, sender_, services_.egress_ips, s.spf_egress_match);
        if (std::optional<Verdict> early = decide_auth_early(s.auth_policy, *spf_, auth_context())) {
            auth_decided_ = true;
            Verdict v = finish(std::move(*early), s.auth_mode);
            if (!v.accepted()) return v;
        }
    }
    if (!auth_decided_ && uses_dkim(s.auth_policy) && !dkim_)
        dkim_ = std::make_unique<DkimVerifier>(*services_.resolver);
    return Verdict::accept(check_name::envelope);
}

Verdict MessageSession::rcpt_to(std::string_view path) {
    const Settings& s = *settings_;
    // The recipient address is the client's to get right; SMTPUTF8 was decided at MAIL FROM,
    // so accept UTF-8 here and let the MTA enforce the extension.
    EnvelopeResult env = check_envelope_address(path, AddressRole::recipient, true);
    if (!env.mailbox) {
        Verdict v = finish(std::move(env.verdict), s.envelope_syntax_mode);
        if (!v.accepted()) return v;
    }
    if (s.recipient_limit_mode != CheckMode::off) {
        Verdict v =
            finish(check_recipient(recipients_ + 1, s.max_recipients, s.recipient_limit_reply), s.recipient_limit_mode);
        if (!v.accepted()) return v;
    }
    if (s.suppression_mode != SuppressionMode::off && services_.suppression_store && !null_sender_) {
        Verdict v = check_suppression(s, path);
        if (!v.accepted()) return v;
    }
    if (s.recipient_domain_mode != CheckMode::off && env.mailbox) {
        RecipientDomainOptions opts{services_.config->global().on_dns_error};
        Verdict v = check_recipient_domain(*services_.resolver, env.mailbox->address(), env.mailbox->domain, opts);
        dns_ms_ += v.dns_ms;
        v = finish(std::move(v), s.recipient_domain_mode);
        if (!v.accepted()) return v;
    }
    // Last, so a recipient another check refuses uses no quota.
    if (!quota_subject_.empty()) {
        Verdict v = check_quota(s);
        if (!v.accepted()) return v;
    }
    ++recipients_;
    if (!services_.trace_key.empty()) accepted_recipient_ = normalise_recipient(path);
    return Verdict::accept(check_name::recipients);
}

void MessageSession::header(std::string_view name, std::string_view value) {
    size_ += name.size() + value.size() + 4;  // "Name: value\r\n"
    if (dkim_) dkim_->header(name, value);
    if (message_checks_) headers_.add(name, value);
}

void MessageSession::end_of_headers() {
    size_ += 2;
    prefetch_message_lookups();
    if (dkim_) dkim_->end_of_headers();
}

Verdict MessageSession::body(std::string_view chunk) {
    size_ += chunk.size();
    const Settings& s = *settings_;
    if (s.size_mode != CheckMode::off && !size_refused_) {
        Verdict v = check_message_size(size_, s.max_message_size);
        if (!v.accepted()) {
            size_refused_ = true;  // decide once: later chunks must not add a second tag header
            v = finish(std::move(v), s.size_mode);
            if (!v.accepted()) {
                size_refusal_ = v;
                return v;
            }
        }
    }
    if (dkim_ && dkim_->wants_body()) dkim_->body(chunk);
    return Verdict::accept(check_name::size);
}

AuthContext MessageSession::auth_context() const {
    return {domain_, services_.egress_ips, settings_->spf_egress_match, services_.config->global().dkim_selectors, {}};
}

Verdict MessageSession::decide_auth_now() {
    const Settings& s = *settings_;
    const GlobalSettings& g = services_.config->global();
    std::optional<DkimOutcome> dkim;
    if (uses_dkim(s.auth_policy)) {
        dkim = dkim_ ? dkim_->finish(domain_) : DkimOutcome{};
        // No valid signature yet: the signer further down will sign if our key is published.
        if (dkim->result != DkimResult::pass && dkim->result != DkimResult::temperror && !g.dkim_selectors.empty() &&
            !g.dkim_public_key_base64.empty()) {
            DkimOutcome published =
                dkim_key_published(*services_.resolver, domain_, g.dkim_selectors, g.dkim_public_key_base64);
            if (published.result == DkimResult::key_published || dkim->result == DkimResult::none)
                dkim = std::move(published);
        }
    }
    return decide_auth(s.auth_policy, spf_ ? &*spf_ : nullptr, dkim ? &*dkim : nullptr, auth_context());
}

const std::vector<DkimSignatureInfo>& MessageSession::message_signatures() {
    static const std::vector<DkimSignatureInfo> none;
    if (!dkim_) return none;
    dkim_->finish(domain_);  // verifies once; a second call returns the first result
    return dkim_->signatures();
}

Verdict MessageSession::decide_alignment(const std::string& from_domain, const DmarcRecord& record) {
    const GlobalSettings& g = services_.config->global();
    AlignmentInputs in;
    in.from_domain = from_domain;
    in.record = record;
    in.envelope_domain = domain_;
    in.signatures = message_signatures();
    // SPF helps only when the envelope domain aligns; the SPF check's own outcome when it ran.
    std::optional<SpfOutcome> spf = spf_;
    if (!spf && domains_aligned(domain_, from_domain, record.strict_spf))
        spf = check_spf_for_egress(*services_.resolver, domain_, sender_, services_.egress_ips,
                                   settings_->spf_egress_match);
    in.spf = spf ? &*spf : nullptr;
    // The relay's key published under the From domain (strict) or its organisational domain.
    std::optional<DkimOutcome> published;
    if (!g.dkim_selectors.empty() && !g.dkim_public_key_base64.empty()) {
        in.published_domain = from_domain;
        published = dkim_key_published(*services_.resolver, from_domain, g.dkim_selectors, g.dkim_public_key_base64);
        const std::string org = organizational_domain(from_domain);
        if (published->result != DkimResult::key_published && !record.strict_dkim && org != from_domain) {
            DkimOutcome at_org =
                dkim_key_published(*services_.resolver, org, g.dkim_selectors, g.dkim_public_key_base64);
            if (at_org.result == DkimResult::key_published || published->result == DkimResult::none) {
                published = std::move(at_org);
                in.published_domain = org;
            }
        }
        in.selector = g.dkim_selectors.front();
    }
    in.published = published ? &*published : nullptr;
    return check_alignment(in);
}

const std::string& MessageSession::single_from_domain() {
    if (!from_domain_) {
        from_domain_.emplace();
        if (headers_.count(Field::from) == 1) {
            MailboxList from = parse_mailbox_list(*headers_.first(Field::from));
            if (from.error.empty() && from.domains.size() == 1 && from.domains.front().front() != '[')
                from_domain_ = std::move(from.domains.front());
        }
    }
    return *from_domain_;
}

void MessageSession::prefetch_message_lookups() {
    if (prefetched_) return;
    prefetched_ = true;
    const Settings& s = *settings_;
    const GlobalSettings& g = services_.config->global();
    const bool our_key = !g.dkim_selectors.empty() && !g.dkim_public_key_base64.empty();
    std::vector<DnsQuestion> stage;
    auto ask = [&stage](std::string name) {
        for (const DnsQuestion& q : stage)
            if (q.name == name) return;
        stage.push_back({std::move(name), rrtype::TXT});
    };
    // The keys of the message's own signatures: whoever reads the signatures verifies them.
    bool signed_by_sender = false;
    if (dkim_)
        for (const std::string& name : dkim_->key_names()) {
            const std::string_view d = std::string_view(name).substr(name.find("._domainkey.") + 12);
            signed_by_sender = signed_by_sender || dkim_domain_aligned(d, domain_);
            ask(name);
        }
    // The auth check looks for the relay's key only when no signature of the sender's passes;
    // a signature by the sender domain usually does, so its keys are not fetched ahead.
    if (!auth_decided_ && uses_dkim(s.auth_policy) && our_key && !signed_by_sender)
        for (const std::string& sel : g.dkim_selectors) ask(sel + "._domainkey." + domain_);
    const bool dmarc_or_alignment = s.dmarc_mode != CheckMode::off || s.alignment_mode != CheckMode::off;
    if (message_checks_ && dmarc_or_alignment && !single_from_domain().empty()) {
        const std::string& from = single_from_domain();
        const std::string org = organizational_domain(from);
        ask("_dmarc." + from);
        if (org != from) ask("_dmarc." + org);
        // SPF counts for alignment when the envelope domain aligns; asked here if no check did.
        if (s.alignment_mode != CheckMode::off && !spf_ && domains_aligned(domain_, from, false)) ask(domain_);
        if (s.alignment_mode != CheckMode::off && our_key)
            for (const std::string& sel : g.dkim_selectors) {
                ask(sel + "._domainkey." + from);
                if (org != from) ask(sel + "._domainkey." + org);
            }
    }
    ask_at_once(stage);
}

void MessageSession::ask_at_once(std::span<const DnsQuestion> stage) {
    if (stage.size() < 2) return;  // one lookup: the check makes it, and counts its time
    double longest = 0;  // the answers came in parallel: the message waited for the slowest
    for (const auto& a : services_.resolver->query_all(stage))
        if (a) longest = std::max(longest, a->elapsed_ms);
    dns_ms_ += longest;
}

Verdict MessageSession::check_message() {
    const Settings& s = *settings_;
    auto refused = [](const Verdict& v) { return !v.accepted(); };
    if (s.header_sanity_mode != CheckMode::off) {
        Verdict v = finish(check_header_sanity(headers_), s.header_sanity_mode);
        if (refused(v)) return v;
    }
    // DMARC and alignment need one From domain; a message without one is the sanity check's.
    const std::string& from_domain = single_from_domain();
    if (!from_domain.empty() && (s.dmarc_mode != CheckMode::off || s.alignment_mode != CheckMode::off)) {
        DmarcLookup dmarc = lookup_dmarc(*services_.resolver, from_domain);
        dns_ms_ += dmarc.dns_ms;
        if (s.dmarc_mode != CheckMode::off) {
            Verdict v = finish(check_dmarc_record(dmarc, services_.config->global().on_dns_error), s.dmarc_mode);
            if (refused(v)) return v;
        }
        if (s.alignment_mode != CheckMode::off) {
            // Without a usable record, receivers' defaults: relaxed for both.
            const DmarcRecord record = dmarc.status == DmarcLookup::Status::found ? dmarc.record : DmarcRecord{};
            Verdict v = decide_alignment(from_domain, record);
            if (v.reply == ReplyId::dns_temp_failure &&
                services_.config->global().on_dns_error == DnsErrorAction::accept)
                v.action = v.decided = v.would = Verdict::Action::accept;
            v = finish(std::move(v), s.alignment_mode);
            if (refused(v)) return v;
        }
    }
    if (s.unsubscribe_mode != CheckMode::off) {
        Verdict v = finish(check_one_click_unsubscribe(headers_, s.bulk, message_signatures()), s.unsubscribe_mode);
        if (refused(v)) return v;
    }
    return Verdict::accept(check_name::auth);
}

Verdict MessageSession::end_of_message() {
    Verdict v = Verdict::accept(check_name::auth);
    if (size_refusal_) {
        v = *size_refusal_;
    } else {
        prefetch_message_lookups();  // when the MTA sent no end of headers
        if (!auth_decided_) {
            auth_decided_ = true;
            v = finish(decide_auth_now(), settings_->auth_mode);
        }
    }
    if (v.accepted() && message_checks_) v = check_message();
    if (v.accepted()) {
        add_trace_header();
        quota_held_.clear();  // the message goes: its recipients stay counted
        quota_message_counted_ = false;
    } else {
        release_quota();
    }
    return v;
}

}  // namespace preflight
