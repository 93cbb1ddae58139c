// preflight-milter: the libmilter glue. Callbacks copy what the MTA hands over into a
// MessageSession (milter/message_session.hpp) and turn its verdicts into SMTP replies taken
// from the one reply table (checks/replies/reply_table.cpp). Anything unexpected tempfails: a milter
// that is unsure never rejects and never lets a message vanish.
#include <fcntl.h>
#include <libmilter/mfapi.h>
#include <sys/stat.h>
#include <unistd.h>

#include <signal.h>

#include <atomic>
#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <iostream>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "config.hpp"
#include "dns_cache.hpp"
#include "dns_resolver.hpp"
#include "egress_rdns_monitor.hpp"
#include "socket_address.hpp"
#include "logger.hpp"
#include "message_session.hpp"
#include "metrics.hpp"
#include "metrics_server.hpp"
#include "milter_metrics.hpp"
#include "milter_suppression.hpp"
#include "quota.hpp"
#include "quota_status.hpp"
#include "reply_table.hpp"
#include "daemon.hpp"
#include "test_message.hpp"

#ifndef PREFLIGHT_VERSION
#define PREFLIGHT_VERSION "0"
#endif

namespace preflight {
namespace {

unsigned long wanted_protocol_steps(const Config& cfg);

// Counted whether or not MetricsListen serves them: a few relaxed atomic adds per event.
MilterMetrics g_metrics;
QuotaNotices g_quota_notices;  // QuotaNoticeShares crossings, for /metrics
// The egress addresses' reverse DNS, checked on its own thread (started by serve()).
EgressRdnsMonitor g_egress_rdns;
SuppressionCounters g_suppression_counters;

// What the sessions of one configuration share: built whole at start and at each reload, then
// read-only. A connection keeps the generation it started with, so a reload never changes the
// rules under a transaction in flight; the last connection of an old generation frees it.
struct ServiceGeneration {
    std::shared_ptr<CachingResolver> resolver;  // shared with the next generation if DNS keys are unchanged
    // Shared with the next generation while QuotaStore and QuotaStoreTimeout stay the same, so a
    // reload keeps the connection (and reservations in flight release into the same store).
    std::shared_ptr<QuotaStore> quota_store;  // null when no quota is configured
    SuppressionService suppression;           // its store is null when SuppressionMode is off everywhere
    MilterServices services;
    unsigned long wanted_steps = 0;  // SMFIP_* this configuration needs
};

std::mutex g_generation_mutex;
std::shared_ptr<const ServiceGeneration> g_generation;  // guarded by g_generation_mutex

std::shared_ptr<const ServiceGeneration> current_generation() {
    std::lock_guard lock(g_generation_mutex);
    return g_generation;
}

// At start and on every reload: check the generation's EgressAddresses now, then periodically.
void watch_egress_rdns(const ServiceGeneration& gen) {
    const GlobalSettings& g = gen.services.config->global();
    g_egress_rdns.configure(gen.resolver, g.egress_addresses, g.egress_rdns_interval);
}

bool same_dns(const GlobalSettings& a, const GlobalSettings& b) {
    return a.nameservers == b.nameservers && a.dns_timeout == b.dns_timeout && a.dns_cache_size == b.dns_cache_size;
}

// PlanTimeZone and TenantsFile into services; throws naming the first error (FILE:LINE) and
// how many more there are, so a reload logs it and keeps the running generation.
void load_plans(const Config& cfg, MilterServices& services) {
    const GlobalSettings& g = cfg.global();
    std::string why;
    std::optional<TimeZone> zone = TimeZone::load(g.plan_time_zone, &why);
    if (!zone) throw std::runtime_error("PlanTimeZone: " + why);
    services.plan_zone = std::make_shared<const TimeZone>(std::move(*zone));
    if (g.tenants_file.empty()) return;
    TenantsResult t = parse_tenants_file(g.tenants_file, cfg.defaults());
    if (!t.table) {
        std::string what = t.errors.front().to_string();
        if (t.errors.size() > 1) what += " (and " + std::to_string(t.errors.size() - 1) + " more errors)";
        throw std::runtime_error("TenantsFile: " + what);
    }
    services.tenants = std::move(t.table);
}

// Throws when the resolver cannot start (e.g. no nameserver in /etc/resolv.conf).
std::shared_ptr<const ServiceGeneration> make_generation(std::shared_ptr<const Config> cfg,
                                                         const ServiceGeneration* previous) {
    auto gen = std::make_shared<ServiceGeneration>();
    const GlobalSettings& g = cfg->global();
    if (previous && same_dns(previous->services.config->global(), g)) {
        gen->resolver = previous->resolver;  // keep the warm cache
    } else {
        try {
            gen->resolver = std::make_shared<CachingResolver>(
                std::make_unique<LdnsResolver>(g.nameservers, g.dns_timeout), g.dns_cache_size,
                DnsCacheOptions{std::chrono::seconds(5), g.dns_timeout + std::chrono::seconds(1), &g_metrics.dns});
        } catch (const std::exception& e) {
            throw std::runtime_error(std::string("DNS: ") + e.what());
        }
    }
    gen->services.resolver = gen->resolver.get();
    load_plans(*cfg, gen->services);  // throws with FILE:LINE on a bad tenants file
    gen->services.quota_notices = &g_quota_notices;
    if (cfg->any_quota() || (gen->services.tenants && gen->services.tenants->any_quota())) {
        const ServiceGeneration* prev = previous && previous->quota_store ? previous : nullptr;
        const GlobalSettings* pg = prev ? &prev->services.config->global() : nullptr;
        if (pg && pg->quota_store == g.quota_store && pg->quota_store_timeout == g.quota_store_timeout &&
            pg->quota_store_credentials == g.quota_store_credentials &&
            pg->quota_store_sentinel_credentials == g.quota_store_sentinel_credentials)
            gen->quota_store = prev->quota_store;
        else try {
                gen->quota_store = open_quota_store(g);
            } catch (const std::exception& e) {  // SQLite unusable (Redis connects lazily)
                throw std::runtime_error(std::string("QuotaStore: ") + e.what());
            }
    }
    gen->services.quota_store = gen->quota_store.get();
    gen->suppression = open_suppression_service(*cfg, previous ? &previous->suppression : nullptr);
    gen->services.suppression_store = gen->suppression.store.get();
    gen->services.suppression_counters = &g_suppression_counters;
    gen->services.trace_key = gen->suppression.trace_key;
    for (const IpAddress& ip : g.egress_addresses) gen->services.egress_ips.push_back(ip.to_string());
    gen->wanted_steps = wanted_protocol_steps(*cfg);
    gen->services.config = std::move(cfg);
    return gen;
}

// Transactions (MAIL FROM to end of message or abort) in flight, and whether we are stopping:
// SIGTERM lets the transactions in flight finish and refuses new ones with a 4xx.
std::atomic<int> g_transactions{0};
std::atomic<bool> g_draining{false};
// How long SIGTERM waits for transactions in flight; Postfix's milter_content_timeout is 300 s,
// but an init system gives a stopping service far less (systemd: 90 s).
constexpr std::chrono::seconds kDrainTimeout{60};

// Counts one transaction for as long as it lives.
class TransactionToken {
public:
    TransactionToken() {
        g_transactions.fetch_add(1, std::memory_order_relaxed);
        g_metrics.transactions.add();
        g_metrics.transactions_total.inc();
    }
    ~TransactionToken() {
        g_transactions.fetch_sub(1, std::memory_order_relaxed);
        g_metrics.transactions.sub();
    }
    TransactionToken(const TransactionToken&) = delete;
    TransactionToken& operator=(const TransactionToken&) = delete;
};

struct Transaction {
    TransactionToken token;
    MessageSession session;
    explicit Transaction(const MilterServices& s) : session(s) {}
};

// Counts one MTA connection for as long as its state lives.
class ConnectionToken {
public:
    ConnectionToken() {
        g_metrics.connections.add();
        g_metrics.connections_total.inc();
    }
    ~ConnectionToken() { g_metrics.connections.sub(); }
    ConnectionToken(const ConnectionToken&) = delete;
    ConnectionToken& operator=(const ConnectionToken&) = delete;
};

// Per MTA connection, from negotiation to close.
struct Connection {
    ConnectionToken token;
    std::shared_ptr<const ServiceGeneration> generation;
    unsigned long steps = 0;  // SMFIP_* negotiated on this connection: when to answer NOREPLY
    std::string client_ip = "unknown";
    std::unique_ptr<Transaction> transaction;

    const MilterServices& services() const { return generation->services; }
    const Config& config() const { return *generation->services.config; }
    MessageSession* message() const { return transaction ? &transaction->session : nullptr; }
};

Connection* connection(SMFICTX* ctx) { return static_cast<Connection*>(smfi_getpriv(ctx)); }

std::string macro(SMFICTX* ctx, const char* name) {
    const char* v = smfi_getsymval(ctx, const_cast<char*>(name));
    return v ? std::string(v) : std::string();
}

// Envelope paths arrive as "<a@b>"; the log adds its own brackets.
std::string_view strip_brackets(std::string_view a) {
    if (a.size() >= 2 && a.front() == '<' && a.back() == '>') return a.substr(1, a.size() - 2);
    return a;
}

void log_decision(SMFICTX* ctx, const Connection& c, const Verdict& v, std::string_view rcpt) {
    g_metrics.count_decision(v);
    std::string line;
    std::string qid = macro(ctx, "i");
    line.append("qid=").append(qid.empty() ? "NOQUEUE" : qid);
    line.append(" client=").append(c.client_ip);
    const MessageSession* m = c.message();
    std::string_view sender = m ? std::string_view(m->sender()) : std::string_view();
    line.append(" from=<").append(strip_brackets(sender)).append(">");
    if (!rcpt.empty()) line.append(" to=<").append(strip_brackets(rcpt.substr(0, 256))).append(">");
    line.append(" check=").append(v.check.empty() ? "all" : v.check);
    std::string_view result = v.dry_run ? "dry-run" : to_string(v.action);
    line.append(" result=").append(result);
    if (v.dry_run) line.append(" would=").append(to_string(v.would));
    if (v.reply != ReplyId::none) append_quoted(line, "reply", reply_text(render(v)));
    // A reason the reply does not show (a store's error names its host, port and user) is the
    // operator's to read, not the client's.
    if (!v.args.reason.empty() && !reply_shows(v.reply, "reason")) append_quoted(line, "reason", v.args.reason);
    char ms[32];
    std::snprintf(ms, sizeof ms, " dns_ms=%.1f", m ? m->dns_ms() : 0.0);
    line.append(ms);
    if (m && m->tenant()) line.append(" tenant=").append(m->tenant()->name);  // TenantsFile
    Logger::log(Logger::Level::info, line);
}

// Turns a refusing verdict into the reply and the libmilter status.
sfsistat refuse(SMFICTX* ctx, const Verdict& v) {
    SmtpReply r = render(v);
    char code[8];
    std::snprintf(code, sizeof code, "%d", r.code);
    const char* l[32] = {};
    for (std::size_t i = 0; i < r.lines.size() && i < 32; ++i) l[i] = r.lines[i].c_str();
    // The list ends at the first NULL; 32 lines is libmilter's maximum.
    int rc =
        smfi_setmlreply(ctx, code, r.enhanced.c_str(), l[0], l[1], l[2], l[3], l[4], l[5], l[6], l[7], l[8], l[9],
                        l[10], l[11], l[12], l[13], l[14], l[15], l[16], l[17], l[18], l[19], l[20], l[21], l[22],
                        l[23], l[24], l[25], l[26], l[27], l[28], l[29], l[30], l[31], static_cast<char*>(nullptr));
    if (rc != MI_SUCCESS) Logger::log(Logger::Level::warning, "smfi_setmlreply failed; the MTA uses its default reply");
    return r.code / 100 == 4 ? SMFIS_TEMPFAIL : SMFIS_REJECT;
}

sfsistat answer(SMFICTX* ctx, Connection& c, const Verdict& v, std::string_view rcpt = {}) {
    if (MessageSession* m = c.message())
        for (const Verdict& note : m->take_notes()) log_decision(ctx, c, note, rcpt);
    if (v.action == Verdict::Action::reject || v.action == Verdict::Action::tempfail) {
        log_decision(ctx, c, v, rcpt);
        return refuse(ctx, v);
    }
    return SMFIS_CONTINUE;
}

// Every callback body runs under this: an exception is a 451 4.3.0, never a crash or a 5xx.
template <typename F>
sfsistat guarded(SMFICTX* ctx, const char* stage, F&& f) {
    try {
        return f();
    } catch (const std::exception& e) {
        Logger::log(Logger::Level::error, std::string(stage) + ": " + e.what() + "; tempfailing");
    } catch (...) {
        Logger::log(Logger::Level::error, std::string(stage) + ": unknown exception; tempfailing");
    }
    ReplyArgs a;
    a.reason = "internal error";
    Verdict v = Verdict::tempfail("internal", ReplyId::internal_temp_failure, a);
    return refuse(ctx, v);
}

// The protocol steps to ask for, decided once from the configuration at start-up: only the
// stages some configuration needs, since every stage costs a round trip.
unsigned long wanted_protocol_steps(const Config& cfg) {
    bool size = false, dkim = false;
    auto scan = [&](const Settings& s) {
        size = size || s.size_mode != CheckMode::off;
        dkim = dkim || (s.auth_mode != CheckMode::off && uses_dkim(s.auth_policy));
        dkim = dkim || s.any_message_check();  // the message checks read headers (and signatures)
    };
    scan(cfg.defaults());
    for (const Settings& s : cfg.overrides()) scan(s);
    // DATA is not skipped and is answered: with SMFIP_NODATA or SMFIP_NR_DATA, Postfix 3.7 waits
    // about 40 ms per message before it sends the headers (measured with
    // tests/bench/milter_latency.py: +42 ms at p50, against +1.5 ms with a DATA reply).
    unsigned long want = SMFIP_NOHELO | SMFIP_NOUNKNOWN;
    if (!size && !dkim) want |= SMFIP_NOHDRS | SMFIP_NOEOH | SMFIP_NOBODY;
    // No replies where nothing can be refused: headers, end of headers, body chunks (a size
    // refusal is answered at end of message, which is when the client hears it anyway), and
    // connect unless ApplyTo needs to wave a client through there.
    want |= SMFIP_NR_HDR | SMFIP_NR_EOH | SMFIP_NR_BODY | SMFIP_HDR_LEADSPC;
    if (cfg.global().apply_to != ApplyTo::networks) want |= SMFIP_NR_CONN;
    return want;
}

// Connection state starts here, so that the steps are those this connection negotiated, from
// the generation it will use throughout.
sfsistat on_negotiate(SMFICTX* ctx, unsigned long f0, unsigned long f1, unsigned long, unsigned long,
                      unsigned long* pf0, unsigned long* pf1, unsigned long* pf2, unsigned long* pf3) {
    auto c = std::make_unique<Connection>();
    c->generation = current_generation();
    *pf0 = SMFIF_ADDHDRS & f0;
    *pf1 = c->generation->wanted_steps & f1;
    *pf2 = *pf3 = 0;
    c->steps = *pf1;
    std::unique_ptr<Connection> previous(connection(ctx));  // none unless the MTA negotiates twice
    smfi_setpriv(ctx, c.release());                         // owned by the connection; freed in on_close
    return SMFIS_CONTINUE;
}

sfsistat on_connect(SMFICTX* ctx, char*, _SOCK_ADDR* addr) {
    return guarded(ctx, "connect", [&] {
        Connection* c = connection(ctx);
        if (!c) {  // an MTA that does not negotiate: no steps skipped, every stage answered
            auto fresh = std::make_unique<Connection>();
            fresh->generation = current_generation();
            c = fresh.get();
            smfi_setpriv(ctx, fresh.release());
        }
        std::optional<IpAddress> ip = addr ? ip_from_sockaddr(addr) : std::nullopt;
        if (ip) c->client_ip = ip->to_string();
        const GlobalSettings& g = c->config().global();
        bool applies = g.apply_to != ApplyTo::networks || (ip && contains(g.apply_to_networks, *ip));
        if (c->steps & SMFIP_NR_CONN) return SMFIS_NOREPLY;
        return applies ? SMFIS_CONTINUE : SMFIS_ACCEPT;
    });
}

sfsistat on_envfrom(SMFICTX* ctx, char** argv) {
    return guarded(ctx, "MAIL FROM", [&] {
        Connection* c = connection(ctx);
        if (!c) throw std::runtime_error("no connection state");
        if (c->config().global().apply_to == ApplyTo::authenticated && macro(ctx, "{auth_authen}").empty())
            return SMFIS_ACCEPT;  // not ours to check: unauthenticated clients are out of scope
        if (g_draining.load(std::memory_order_relaxed)) {
            Verdict v = Verdict::tempfail("shutdown", ReplyId::shutting_down, {});
            log_decision(ctx, *c, v, {});
            return refuse(ctx, v);
        }
        c->transaction = std::make_unique<Transaction>(c->services());
        std::vector<std::string_view> args;
        for (char** a = argv + 1; *argv && *a; ++a) args.emplace_back(*a);
        std::string login = macro(ctx, "{auth_authen}");
        return answer(ctx, *c, c->message()->mail_from(argv[0] ? argv[0] : "", args, login));
    });
}

sfsistat on_envrcpt(SMFICTX* ctx, char** argv) {
    return guarded(ctx, "RCPT TO", [&] {
        Connection* c = connection(ctx);
        if (!c || !c->message()) throw std::runtime_error("RCPT without MAIL FROM state");
        std::string_view rcpt = argv[0] ? argv[0] : "";
        return answer(ctx, *c, c->message()->rcpt_to(rcpt), rcpt);
    });
}

sfsistat on_header(SMFICTX* ctx, char* name, char* value) {
    return guarded(ctx, "header", [&] {
        Connection* c = connection(ctx);
        if (!c || !c->message()) throw std::runtime_error("header without MAIL FROM state");
        c->message()->header(name ? name : "", value ? value : "");
        return (c->steps & SMFIP_NR_HDR) ? SMFIS_NOREPLY : SMFIS_CONTINUE;
    });
}

sfsistat on_eoh(SMFICTX* ctx) {
    return guarded(ctx, "end of headers", [&] {
        Connection* c = connection(ctx);
        if (!c || !c->message()) throw std::runtime_error("end of headers without MAIL FROM state");
        c->message()->end_of_headers();
        return (c->steps & SMFIP_NR_EOH) ? SMFIS_NOREPLY : SMFIS_CONTINUE;
    });
}

sfsistat on_body(SMFICTX* ctx, unsigned char* chunk, size_t len) {
    return guarded(ctx, "body", [&] {
        Connection* c = connection(ctx);
        if (!c || !c->message()) throw std::runtime_error("body without MAIL FROM state");
        Verdict v = c->message()->body({reinterpret_cast<const char*>(chunk), len});
        if (c->steps & SMFIP_NR_BODY) return SMFIS_NOREPLY;  // end_of_message() repeats a refusal
        return answer(ctx, *c, v);
    });
}

sfsistat on_eom(SMFICTX* ctx) {
    return guarded(ctx, "end of message", [&] {
        Connection* c = connection(ctx);
        if (!c || !c->message()) throw std::runtime_error("end of message without MAIL FROM state");
        Verdict v = c->message()->end_of_message();
        sfsistat s = answer(ctx, *c, v);
        if (s != SMFIS_CONTINUE) return s;
        for (const TagHeader& h : c->message()->tag_headers()) {
            // With SMFIP_HDR_LEADSPC the value is taken verbatim: the blank after the colon is ours.
            std::string value;
            if (c->steps & SMFIP_HDR_LEADSPC) value = ' ';
            value += h.value;
            if (smfi_addheader(ctx, const_cast<char*>(h.name.c_str()), value.data()) != MI_SUCCESS)
                Logger::log(Logger::Level::warning, "could not add header " + h.name);
        }
        log_decision(ctx, *c, Verdict::accept("all"), {});
        c->transaction.reset();
        return SMFIS_CONTINUE;
    });
}

sfsistat on_abort(SMFICTX* ctx) {
    if (Connection* c = connection(ctx)) c->transaction.reset();
    return SMFIS_CONTINUE;
}

sfsistat on_close(SMFICTX* ctx) {
    std::unique_ptr<Connection> c(connection(ctx));  // takes back what on_negotiate (or on_connect) gave libmilter
    smfi_setpriv(ctx, nullptr);
    return SMFIS_CONTINUE;
}

const char kUsage[] =
    "usage: preflight-milter [-f] [-c FILE]     run the milter (-f: foreground, log to stderr)\n"
    "       preflight-milter -n [-c FILE]       check the configuration (and the reverse DNS of\n"
    "                                           EgressAddresses) and exit\n"
    "       preflight-milter --quota-status [--json] [-c FILE] [DOMAIN|SENDER|login:NAME|TENANT]\n"
    "                                           sending quota usage from QuotaStore\n"
    "       preflight-milter --test-message FILE --from ADDR [--rcpt ADDR]... [--format text|json] [-c FILE]\n"
    "                                           run every check on a message as the milter would\n"
    "  -c FILE  configuration (default /etc/preflight/preflight.conf)\n";

// -n: one line per EgressAddresses address on its forward-confirmed reverse DNS. A report, not
// a conf error: the exit status stays 0 (the relay runs, receivers may junk its mail).
void report_egress_rdns(const GlobalSettings& g, std::ostream& out) {
    if (g.egress_addresses.empty()) return;
    try {
        LdnsResolver resolver(g.nameservers, g.dns_timeout);
        for (const EgressRdns& r : check_egress_rdns(resolver, g.egress_addresses)) out << describe(r) << "\n";
    } catch (const std::exception& e) {  // no usable nameserver
        out << "egress reverse DNS not checked: DNS: " << e.what() << "\n";
    }
}

// SIGHUP: read the conf again; a broken one is logged with FILE:LINE and the running one stays.
void reload(const std::string& conf_path) {
    ParseResult parsed = parse_config_file(conf_path);
    if (!parsed.ok()) {
        for (const ConfigError& e : parsed.errors) Logger::log(Logger::Level::error, "reload: " + e.to_string());
        Logger::log(Logger::Level::error, "reload: " + conf_path + " has errors; keeping the running configuration");
        g_metrics.reloads_failed.inc();
        return;
    }
    std::shared_ptr<const ServiceGeneration> old = current_generation();
    const GlobalSettings& was = old->services.config->global();
    const GlobalSettings& now = parsed.config->global();
    // These shape the process itself (socket, identity, log): a restart applies them.
    auto keep = [&](bool same, const char* key) {
        if (!same)
            Logger::log(Logger::Level::warning,
                        std::string("reload: ") + key + " changed; it takes effect when the milter restarts");
    };
    keep(was.socket == now.socket, "Socket");
    keep(was.user == now.user && was.group == now.group, "UserID");
    keep(was.run_as_root == now.run_as_root, "RunAsRoot");
    keep(was.pid_file == now.pid_file, "PidFile");
    keep(was.umask == now.umask, "Umask");
    keep(was.syslog == now.syslog && was.log_facility == now.log_facility, "Syslog/LogFacility");
    keep(was.metrics_listen == now.metrics_listen, "MetricsListen");
    try {
        std::shared_ptr<const ServiceGeneration> next = make_generation(parsed.config, old.get());
        {
            std::lock_guard lock(g_generation_mutex);
            g_generation = next;
        }
        if (next->services.tenants)
            Logger::log(Logger::Level::info, "reload: " + std::to_string(next->services.tenants->size()) +
                                                 " tenants from " + next->services.tenants->file());
        watch_egress_rdns(*next);
        Logger::log(Logger::Level::info,
                    "reloaded " + conf_path +
                        (next->resolver == old->resolver ? std::string(" (DNS cache kept)")
                                                         : std::string(" (new resolver, empty cache)")));
        g_metrics.reloads_ok.inc();
    } catch (const std::exception& e) {
        Logger::log(Logger::Level::error, std::string("reload: ") + e.what() + "; keeping the running configuration");
        g_metrics.reloads_failed.inc();
    }
}

// SIGTERM/SIGINT: new transactions get 451 4.3.2, those in flight finish (DrainTimeout at
// most), then libmilter is stopped. stop_requests counts the stop signals (a second one is logged).
void stop_libmilter(const std::atomic<int>& stop_requests, const std::atomic<bool>& milter_done) {
    g_draining = true;
    const auto deadline = std::chrono::steady_clock::now() + kDrainTimeout;
    int left = g_transactions.load();
    Logger::log(Logger::Level::info, "stopping: " + std::to_string(left) + " transaction(s) in flight");
    int seen = stop_requests.load();
    while ((left = g_transactions.load()) > 0 && std::chrono::steady_clock::now() < deadline) {
        std::this_thread::sleep_for(std::chrono::milliseconds(20));
        if (int now = stop_requests.load(); now != seen) {
            seen = now;
            Logger::log(Logger::Level::info, "already stopping; waiting for transactions in flight");
        }
    }
    if (left > 0)
        Logger::log(Logger::Level::warning,
                    "stopping with " + std::to_string(left) + " transaction(s) unfinished; the MTA tempfails them");
    // libmilter may still be starting (a SIGTERM right after start) and then forget a stop
    // request made too early: repeat it until smfi_main() returns. Its listener looks at the
    // request every few seconds; 30 s is a generous bound.
    const auto give_up = std::chrono::steady_clock::now() + std::chrono::seconds(30);
    while (!milter_done && std::chrono::steady_clock::now() < give_up) {
        smfi_stop();
        std::this_thread::sleep_for(std::chrono::milliseconds(200));
    }
    if (!milter_done) {
        Logger::log(Logger::Level::error, "libmilter did not stop within 30 s; exiting");
        std::_Exit(1);
    }
}

// Runs libmilter on its own thread; this (the main) thread waits for signals.
//
// libmilter's own signal thread sigwait()s for SIGHUP, SIGTERM and SIGINT and stops the milter at
// once on any of them: no reload, and (with Debian's worker pool) transactions in flight are
// dropped. Linux hands a process-directed signal to the main thread when that thread waits for
// it, so the main thread sits in sigwait() for all three and only leaves it for a few
// instructions: a reload runs on a helper thread. SIGTERM/SIGINT: new transactions get 451 4.3.2,
// those in flight finish (at most DrainTimeout), then libmilter is stopped.
int serve(const std::string& conf_path, const GlobalSettings& g, metrics::Server* metrics_server) {
    const DaemonSignals signals;  // blocks them in every thread started below

    Logger::log(Logger::Level::info, "starting: socket " + g.socket.postfix() + ", conf " + conf_path);
    if (metrics_server) {
        metrics_server->start();  // after the mask: its threads leave the signals to this one
        Logger::log(Logger::Level::info, "metrics: http://" + metrics_server->where() + "/metrics");
    }
    std::atomic<bool> milter_done{false};
    int milter_rc = MI_SUCCESS;
    std::thread milter([&] {
        milter_rc = smfi_main();
        milter_done = true;
    });
    // After libmilter's thread: the first check's work must not delay libmilter's start (a stop
    // requested before smfi_main() reaches its listener makes it fail). Inherits the signal mask.
    watch_egress_rdns(*current_generation());

    // The stop runs on its own thread so that the main thread stays in DaemonSignals::run: a
    // signal arriving while it was busy would go to libmilter's signal thread, which drops what
    // is in flight.
    std::atomic<int> stop_requests{0};
    std::atomic<bool> stopper_done{false};
    std::thread stopper([&] {
        while (stop_requests.load() == 0 && !milter_done) stop_requests.wait(0);
        if (!milter_done) stop_libmilter(stop_requests, milter_done);
        stopper_done = true;
    });
    auto request_stop = [&] {
        stop_requests.fetch_add(1);
        stop_requests.notify_one();
    };
    signals.run({
        .reload = [&] { reload(conf_path); },
        .stop = [&](int) { request_stop(); },
        .finished =
            [&] {
                if (milter_done && stop_requests.load() == 0)
                    request_stop();  // ended by itself: let the stopper finish
                return stopper_done.load();
            },
    });
    stopper.join();
    milter.join();
    g_egress_rdns.stop();
    if (metrics_server) metrics_server->stop();
    Logger::log(Logger::Level::info, "stopped");
    return milter_rc == MI_SUCCESS ? 0 : 1;
}

}  // namespace
}  // namespace preflight

namespace preflight {
namespace {

// preflight-milter's command line.
struct MilterOptions {
    std::string conf_path = "/etc/preflight/preflight.conf";
    bool foreground = false, check_only = false, show_quota = false, quota_json = false;
    std::string quota_arg;
    std::optional<TestMessageRequest> test;  // --test-message
    bool from_given = false;
};

// The options of --test-message; false on a bad one (told on stderr).
bool parse_test_message_arg(const std::string& a, int argc, char** argv, int& i, MilterOptions& o) {
    if (i + 1 >= argc) {
        std::cerr << "preflight-milter: " << a << " needs a value\n";
        return false;
    }
    if (!o.test) o.test.emplace();
    std::string v = argv[++i];
    if (a == "--test-message") o.test->file = v;
    else if (a == "--from") {
        o.test->from = v;
        o.from_given = true;
    } else if (a == "--rcpt") o.test->rcpts.push_back(v);
    else if (v == "json" || v == "text") o.test->json = v == "json";
    else {
        std::cerr << "preflight-milter: --format " << v << ": not text or json\n";
        return false;
    }
    return true;
}

// argv into o. Nothing to go on, else the exit status (0 after -V or -h, 2 for a bad argument).
std::optional<int> parse_milter_args(int argc, char** argv, MilterOptions& o) {
    for (int i = 1; i < argc; ++i) {
        std::string a = argv[i];
        if (a == "-f") o.foreground = true;
        else if (a == "--quota-status") o.show_quota = true;
        else if (a == "--json" && o.show_quota) o.quota_json = true;
        else if (o.show_quota && o.quota_arg.empty() && !a.empty() && a[0] != '-') o.quota_arg = a;
        else if (a == "--test-message" || a == "--from" || a == "--rcpt" || a == "--format") {
            if (!parse_test_message_arg(a, argc, argv, i, o)) {
                std::cerr << kUsage;
                return 2;
            }
        } else if (a == "-n") o.check_only = true;
        else if (a == "-c" && i + 1 < argc) o.conf_path = argv[++i];
        else if (a == "-V" || a == "--version") {
            std::cout << "preflight-milter " PREFLIGHT_VERSION "\n";
            return 0;
        } else if (a == "-h" || a == "--help") {
            std::cout << kUsage;
            return 0;
        } else {
            std::cerr << "preflight-milter: bad argument '" << a << "'\n" << kUsage;
            return 2;
        }
    }
    if (o.test && (o.test->file.empty() || !o.from_given)) {
        std::cerr << "preflight-milter: --test-message FILE and --from ADDR go together\n" << kUsage;
        return 2;
    }
    return std::nullopt;
}

// --test-message: the conf's resolver (its nameservers, timeout and cache), then the message.
int test_message_command(const TestMessageRequest& req, std::shared_ptr<const Config> cfg) {
    const GlobalSettings& g = cfg->global();
    std::unique_ptr<CachingResolver> resolver;
    try {
        resolver = std::make_unique<CachingResolver>(std::make_unique<LdnsResolver>(g.nameservers, g.dns_timeout),
                                                     g.dns_cache_size);
    } catch (const std::exception& e) {
        std::cerr << "preflight-milter: DNS: " << e.what() << "\n";
        return 2;
    }
    return run_test_message(req, std::move(cfg), *resolver, std::cout, std::cerr);
}

// The callbacks, the flags and the socket, told to libmilter.
bool register_with_libmilter(const GlobalSettings& g) {
    smfiDesc desc{};
    desc.xxfi_name = const_cast<char*>("preflight");
    desc.xxfi_version = SMFI_VERSION;
    desc.xxfi_flags = SMFIF_ADDHDRS;
    desc.xxfi_connect = on_connect;
    desc.xxfi_envfrom = on_envfrom;
    desc.xxfi_envrcpt = on_envrcpt;
    desc.xxfi_header = on_header;
    desc.xxfi_eoh = on_eoh;
    desc.xxfi_body = on_body;
    desc.xxfi_eom = on_eom;
    desc.xxfi_abort = on_abort;
    desc.xxfi_close = on_close;
    desc.xxfi_negotiate = on_negotiate;

    std::string conn = g.socket.libmilter();
    if (smfi_setconn(const_cast<char*>(conn.c_str())) != MI_SUCCESS || smfi_register(desc) != MI_SUCCESS) {
        std::cerr << "preflight-milter: cannot set up libmilter for " << conn << "\n";
        return false;
    }
    return true;
}

// The milter's socket, made with the conf's umask (a stale unix socket is replaced) while still
// root; then it and the SQLite store's files are handed to UserID.
bool open_socket(const GlobalSettings& g, const DaemonIdentity& identity, RemoveAtExit& socket_file) {
    mode_t old_umask = ::umask(static_cast<mode_t>(g.umask));
    int opened = smfi_opensocket(true);
    ::umask(old_umask);
    if (opened != MI_SUCCESS) {
        std::cerr << "preflight-milter: cannot open socket " << g.socket.postfix() << "\n";
        return false;
    }
    const bool unix_socket = g.socket.kind == SocketAddress::Kind::unix_socket;
    if (unix_socket) socket_file.remember(g.socket.path);  // libmilter leaves it behind
    // A unix socket is made while we are still root: hand it to UserID, or with the default
    // Umask 0117 (socket 0660) only root could connect, not the MTA in UserID's group.
    std::string err;
    if (unix_socket && !identity.hand_over(g.socket.path, err)) {
        std::cerr << "preflight-milter: " << err << "\n";
        return false;
    }
    // The SQLite stores (quota, suppression) were opened as root: their files go to UserID too,
    // or the milter could not write them after a restart as that user.
    std::vector<std::string> sqlite_files;
    if (g_generation->quota_store && g.quota_store.kind == QuotaStoreSpec::Kind::sqlite)
        sqlite_files.push_back(g.quota_store.path);
    if (g_generation->suppression.store)
        if (std::optional<QuotaStoreSpec> spec = parse_quota_store(g.suppression_store);
            spec && spec->kind == QuotaStoreSpec::Kind::sqlite)
            sqlite_files.push_back(spec->path);
    for (const std::string& db : sqlite_files)
        for (const char* suffix : {"", "-wal", "-shm"})
            if (!identity.hand_over(db + suffix, err, true)) {
                std::cerr << "preflight-milter: " << err << "\n";
                return false;
            }
    return true;
}

// MetricsListen's server, bound now while a busy port can still be told on stderr. nullptr and
// false when it cannot be; nullptr and true when none is configured.
bool open_metrics(const GlobalSettings& g, metrics::Registry& registry, std::unique_ptr<metrics::Server>& server) {
    if (g.metrics_listen.empty()) return true;
    std::optional<ListenAddress> where = parse_listen_address(g.metrics_listen);  // checked by the conf
    if (!where) return false;
    g_quota_notices.register_with(registry);
    g_egress_rdns.register_with(registry);
    register_suppression_metrics(registry, g_suppression_counters, [] {
        std::shared_ptr<const ServiceGeneration> gen = current_generation();
        return gen ? gen->suppression.stats_store : nullptr;
    });
    g_metrics.register_with(registry, [] {
        std::shared_ptr<const ServiceGeneration> gen = current_generation();
        return gen ? static_cast<double>(gen->resolver->stats().entries) : 0.0;
    });
    try {
        server = std::make_unique<metrics::Server>(registry, *where);
    } catch (const std::exception& e) {
        std::cerr << "preflight-milter: MetricsListen: " << e.what() << "\n";
        return false;
    }
    if (!where->is_loopback())
        Logger::log(Logger::Level::warning, "MetricsListen " + where->to_string() +
                                                " is not a loopback address; /metrics has no authentication");
    return true;
}

constexpr IdentityKnobs kMilterKnobs{"preflight-milter", "UserID", "RunAsRoot yes"};

}  // namespace
}  // namespace preflight

int main(int argc, char** argv) {
    using namespace preflight;
    MilterOptions o;
    if (auto status = parse_milter_args(argc, argv, o)) return *status;
    const std::string& conf_path = o.conf_path;

    ParseResult parsed = parse_config_file(conf_path);
    if (!parsed.ok()) {
        for (const ConfigError& e : parsed.errors) std::cerr << e.to_string() << "\n";
        return 2;
    }
    if (o.check_only) {
        const std::string& tenants_file = parsed.config->global().tenants_file;
        if (!tenants_file.empty()) {
            TenantsResult t = parse_tenants_file(tenants_file, parsed.config->defaults());
            for (const ConfigError& e : t.errors) std::cerr << e.to_string() << "\n";
            if (!t.table) return 2;
            std::cout << tenants_file << ": ok (" << t.table->size() << " tenants)\n";
        }
        std::cout << conf_path << ": ok\n";
        report_egress_rdns(parsed.config->global(), std::cout);
        return 0;
    }
    if (o.show_quota) {
        const auto now_ms =
            std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::system_clock::now().time_since_epoch())
                .count();
        if (std::optional<int> rc = tenant_quota_status(*parsed.config, o.quota_arg, o.quota_json, std::cout, now_ms))
            return *rc;
        return quota_status(*parsed.config, o.quota_arg, std::cout);
    }
    if (o.test) return test_message_command(*o.test, parsed.config);
    const GlobalSettings& g = parsed.config->global();
    Logger::init("preflight-milter", o.foreground || !g.syslog, to_syslog_facility(g.log_facility));
    std::string err;
    std::optional<UserGroup> user;
    if (!g.user.empty()) user = UserGroup{g.user, g.group};
    std::optional<DaemonIdentity> identity = DaemonIdentity::decide(user, g.run_as_root, kMilterKnobs, err);
    if (!identity) {
        std::cerr << conf_path << ": " << err << "\n";
        return 2;
    }

    try {
        g_generation = make_generation(parsed.config, nullptr);
    } catch (const std::exception& e) {  // e.g. an unreadable /etc/resolv.conf
        std::cerr << "preflight-milter: " << e.what() << "\n";
        return 1;
    }
    if (!register_with_libmilter(g)) return 1;
    metrics::Registry registry;
    std::unique_ptr<metrics::Server> metrics_server;
    if (!open_metrics(g, registry, metrics_server)) return 1;
    RemoveAtExit socket_file, pid_file;
    if (!open_socket(g, *identity, socket_file)) return 1;
    if (!o.foreground && daemon(0, 0) != 0) {
        std::cerr << "preflight-milter: cannot detach: " << std::strerror(errno) << "\n";
        return 1;
    }
    if (!g.pid_file.empty()) {
        if (write_pid_file(g.pid_file, err)) pid_file.remember(g.pid_file);
        else Logger::log(Logger::Level::warning, "PidFile: " + err);  // "PidFile: cannot write PATH: why"
    }
    if (!identity->drop_privileges(err)) {
        std::cerr << "preflight-milter: " << err << "\n";
        return 1;
    }
    return serve(conf_path, g, metrics_server.get());
}
