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
#include <condition_variable>
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
#include "run_as.hpp"

#ifndef PREFLIGHT_VERSION
#define PREFLIGHT_VERSION "0"
#endif

namespace preflight {
namespace {

unsigned long wanted_protocol_steps(const Config& cfg);

// Counted whether or not MetricsListen serves them: a few relaxed atomic adds per event.
MilterMetrics g_metrics;
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

bool same_dns(const GlobalSettings& a, const GlobalSettings& b) {
    return a.nameservers == b.nameservers && a.dns_timeout == b.dns_timeout && a.dns_cache_size == b.dns_cache_size;
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
    if (cfg->any_quota()) {
        const ServiceGeneration* prev = previous && previous->quota_store ? previous : nullptr;
        if (prev && prev->services.config->global().quota_store == g.quota_store &&
            prev->services.config->global().quota_store_timeout == g.quota_store_timeout)
            gen->quota_store = prev->quota_store;
        else try {
                gen->quota_store = open_quota_store(g.quota_store, g.quota_store_timeout);
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
    char ms[32];
    std::snprintf(ms, sizeof ms, " dns_ms=%.1f", m ? m->dns_ms() : 0.0);
    line.append(ms);
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
    std::unique_ptr<Connection> c(connection(ctx));  // takes back ownership from on_connect
    smfi_setpriv(ctx, nullptr);
    return SMFIS_CONTINUE;
}

const char kUsage[] =
    "usage: preflight-milter [-f] [-c FILE]     run the milter (-f: foreground, log to stderr)\n"
    "       preflight-milter -n [-c FILE]       check the configuration and exit\n"
    "       preflight-milter --quota-status [-c FILE] [DOMAIN|SENDER|login:NAME]\n"
    "                                           sending quota usage from QuotaStore\n"
    "  -c FILE  configuration (default /etc/preflight/preflight.conf)\n";

// The identity UserID names, looked up while we can still read every database.
std::optional<RunAs> resolve_user(const GlobalSettings& g) {
    std::string err;
    std::optional<RunAs> who = resolve_run_as(g.user, g.group, err);
    if (!who) std::cerr << "preflight-milter: UserID: " << err << "\n";
    return who;
}

bool drop_privileges(const RunAs& who) {
    std::string err;
    if (preflight::drop_privileges(who, err)) return true;
    std::cerr << "preflight-milter: " << err << "\n";
    return false;
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

// Runs libmilter on its own thread; this (the main) thread waits for signals.
//
// libmilter's own signal thread sigwait()s for SIGHUP, SIGTERM and SIGINT and stops the milter at
// once on any of them: no reload, and (with Debian's worker pool) transactions in flight are
// dropped. Linux hands a process-directed signal to the main thread when that thread waits for
// it, so the main thread sits in sigwait() for all three and only leaves it for a few
// instructions: a reload runs on a helper thread. SIGTERM/SIGINT: new transactions get 451 4.3.2,
// those in flight finish (at most DrainTimeout), then libmilter is stopped.
int serve(const std::string& conf_path, const GlobalSettings& g, metrics::Server* metrics_server) {
    const sigset_t signals = block_daemon_signals();  // inherited by every thread started below

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

    std::mutex reload_mutex;
    std::condition_variable reload_wanted;
    bool reload_pending = false, stopping = false;
    std::thread reloader([&] {
        std::unique_lock lock(reload_mutex);
        for (;;) {
            reload_wanted.wait(lock, [&] { return reload_pending || stopping; });
            if (stopping) return;
            reload_pending = false;
            lock.unlock();
            reload(conf_path);
            lock.lock();
        }
    });

    // The stop: new transactions 451 4.3.2, those in flight finish (DrainTimeout at most), then
    // libmilter is stopped. It runs on its own thread so that this (main) thread never leaves
    // sigtimedwait() for longer than a few instructions: a signal that arrived while the main
    // thread was busy would go to libmilter's signal thread, which drops what is in flight.
    std::atomic<int> stop_requests{0};
    std::atomic<bool> stopper_done{false};
    std::thread stopper([&] {
        while (stop_requests.load() == 0 && !milter_done) stop_requests.wait(0);
        if (!milter_done) {
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
                Logger::log(Logger::Level::warning, "stopping with " + std::to_string(left) +
                                                        " transaction(s) unfinished; the MTA tempfails them");
            // libmilter may still be starting (a SIGTERM right after start) and then forget a
            // stop request made too early: repeat it until smfi_main() returns. Its listener looks
            // at the request every few seconds; 30 s is a generous bound.
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
        stopper_done = true;
    });

    // This thread only takes signals, until the stop is done (or libmilter ended on its own).
    const timespec tick{0, 100'000'000};
    while (!stopper_done) {
        int sig = sigtimedwait(&signals, nullptr, &tick);
        if (sig == SIGHUP) {
            {
                std::lock_guard lock(reload_mutex);
                reload_pending = true;  // several SIGHUPs during one reload make one more reload
            }
            reload_wanted.notify_one();
        } else if (sig == SIGTERM || sig == SIGINT) {
            stop_requests.fetch_add(1);
            stop_requests.notify_one();
        } else if (milter_done && stop_requests.load() == 0) {
            stop_requests.fetch_add(1);  // libmilter ended by itself: let the stopper finish
            stop_requests.notify_one();
        }
    }
    stopper.join();
    milter.join();
    {
        std::lock_guard lock(reload_mutex);
        stopping = true;
        reload_wanted.notify_one();
    }
    reloader.join();
    if (metrics_server) metrics_server->stop();
    Logger::log(Logger::Level::info, "stopped");
    if (!g.pid_file.empty()) ::unlink(g.pid_file.c_str());
    // Our unix socket, if it is still a socket (libmilter leaves it; the next start would replace
    // it anyway). Best effort: after dropping root the directory may not be ours to change.
    struct stat st {};
    if (g.socket.kind == SocketAddress::Kind::unix_socket && ::lstat(g.socket.path.c_str(), &st) == 0 &&
        S_ISSOCK(st.st_mode))
        ::unlink(g.socket.path.c_str());
    return milter_rc == MI_SUCCESS ? 0 : 1;
}

}  // namespace
}  // namespace preflight

namespace preflight {
namespace {

// preflight-milter's command line.
struct MilterOptions {
    std::string conf_path = "/etc/preflight/preflight.conf";
    bool foreground = false, check_only = false, show_quota = false;
    std::string quota_arg;
};

// argv into o. Nothing to go on, else the exit status (0 after -V or -h, 2 for a bad argument).
std::optional<int> parse_milter_args(int argc, char** argv, MilterOptions& o) {
    for (int i = 1; i < argc; ++i) {
        std::string a = argv[i];
        if (a == "-f") o.foreground = true;
        else if (a == "--quota-status") o.show_quota = true;
        else if (o.show_quota && o.quota_arg.empty() && !a.empty() && a[0] != '-') o.quota_arg = a;
        else if (a == "-n") o.check_only = true;
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
    return std::nullopt;
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
bool open_socket(const GlobalSettings& g, const std::optional<RunAs>& run_as) {
    // The socket is created with the conf's umask, replacing a stale unix socket.
    mode_t old_umask = ::umask(static_cast<mode_t>(g.umask));
    int opened = smfi_opensocket(true);
    ::umask(old_umask);
    if (opened != MI_SUCCESS) {
        std::cerr << "preflight-milter: cannot open socket " << g.socket.postfix() << "\n";
        return false;
    }
    // A unix socket is made while we are still root: hand it to UserID, or with the default
    // Umask 007 only root could connect, and the MTA (user postfix, group UserID's) could not.
    std::string err;
    if (run_as && g.socket.kind == SocketAddress::Kind::unix_socket && !give_to(g.socket.path, *run_as, err)) {
        std::cerr << "preflight-milter: " << err << "\n";
        return false;
    }
    // The SQLite quota store was opened as root: its files go to UserID too, or the milter
    // could not write them after a restart as that user. lchown, as for the socket: a link
    // planted in the directory gives away the link, never what it points to.
    if (run_as && g_generation->quota_store && g.quota_store.kind == QuotaStoreSpec::Kind::sqlite)
        for (const char* suffix : {"", "-wal", "-shm"})
            if (!give_to(g.quota_store.path + suffix, *run_as, err, true)) {
                std::cerr << "preflight-milter: " << err << "\n";
                return false;
            }
    // The same for the SQLite suppression store.
    if (run_as && g_generation->suppression.store)
        if (std::optional<QuotaStoreSpec> spec = parse_quota_store(g.suppression_store);
            spec && spec->kind == QuotaStoreSpec::Kind::sqlite)
            for (const char* suffix : {"", "-wal", "-shm"})
                if (!give_to(spec->path + suffix, *run_as, err, true)) {
                    std::cerr << "preflight-milter: " << err << "\n";
                    return false;
                }
    return true;
}

}  // namespace
}  // namespace preflight

int main(int argc, char** argv) {
    using namespace preflight;
    MilterOptions o;
    if (auto status = parse_milter_args(argc, argv, o)) return *status;
    const std::string& conf_path = o.conf_path;
    const bool foreground = o.foreground;

    ParseResult parsed = parse_config_file(conf_path);
    if (!parsed.ok()) {
        for (const ConfigError& e : parsed.errors) std::cerr << e.to_string() << "\n";
        return 2;
    }
    if (o.check_only) {
        std::cout << conf_path << ": ok\n";
        return 0;
    }
    if (o.show_quota) return quota_status(*parsed.config, o.quota_arg, std::cout);
    const GlobalSettings& g = parsed.config->global();
    Logger::init("preflight-milter", foreground || !g.syslog, to_syslog_facility(g.log_facility));
    if (g.user.empty() && geteuid() == 0 && !g.run_as_root) {
        std::cerr << conf_path << ": UserID: not set, and preflight-milter does not run as root; set "
                  << "UserID (e.g. preflight:postfix) or RunAsRoot yes\n";
        return 2;
    }

    try {
        g_generation = make_generation(parsed.config, nullptr);
    } catch (const std::exception& e) {  // e.g. an unreadable /etc/resolv.conf
        std::cerr << "preflight-milter: " << e.what() << "\n";
        return 1;
    }

    if (!register_with_libmilter(g)) return 1;
    std::optional<RunAs> run_as;
    if (!g.user.empty() && !(run_as = resolve_user(g))) return 2;
    // Bound now, while a busy port can still be told on stderr; served from serve() on.
    metrics::Registry registry;
    std::unique_ptr<metrics::Server> metrics_server;
    if (!g.metrics_listen.empty()) {
        std::optional<ListenAddress> where = parse_listen_address(g.metrics_listen);  // checked by the conf
        if (!where) return 2;
        g_metrics.register_with(registry, [] {
            std::shared_ptr<const ServiceGeneration> gen = current_generation();
            return gen ? static_cast<double>(gen->resolver->stats().entries) : 0.0;
        });
        register_suppression_metrics(registry, g_suppression_counters, [] {
            std::shared_ptr<const ServiceGeneration> gen = current_generation();
            return gen ? gen->suppression.stats_store : nullptr;
        });
        try {
            metrics_server = std::make_unique<metrics::Server>(registry, *where);
        } catch (const std::exception& e) {
            std::cerr << "preflight-milter: MetricsListen: " << e.what() << "\n";
            return 1;
        }
        if (!where->is_loopback())
            Logger::log(Logger::Level::warning, "MetricsListen " + where->to_string() +
                                                    " is not a loopback address; /metrics has no authentication");
    }
    if (!open_socket(g, run_as)) return 1;
    std::string err;
    if (!foreground && daemon(0, 0) != 0) {
        std::cerr << "preflight-milter: cannot detach: " << std::strerror(errno) << "\n";
        return 1;
    }
    if (!g.pid_file.empty() && !write_pid_file(g.pid_file, err))
        Logger::log(Logger::Level::warning, "PidFile: " + err);  // "PidFile: cannot write PATH: why"
    if (run_as && !drop_privileges(*run_as)) return 1;
    return serve(conf_path, g, metrics_server.get());
}
