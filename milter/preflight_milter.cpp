// preflight-milter: the libmilter glue. Callbacks copy what the MTA hands over into a
// MessageSession (milter/message_session.hpp) and turn its verdicts into SMTP replies taken
// from the one reply table (checks/reply_table.cpp). Anything unexpected tempfails: a milter
// that is unsure never rejects and never lets a message vanish.
#include <grp.h>
#include <libmilter/mfapi.h>
#include <pwd.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <iostream>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "config.hpp"
#include "dns_cache.hpp"
#include "dns_resolver.hpp"
#include "logger.hpp"
#include "message_session.hpp"
#include "reply_table.hpp"

#ifndef PREFLIGHT_VERSION
#define PREFLIGHT_VERSION "0"
#endif

namespace preflight {
namespace {

// Set once in main() before smfi_main() starts any thread; read-only afterwards.
MilterServices g_services;
unsigned long g_protocol_steps = 0;  // SMFIP_* we asked for, to know when to answer NOREPLY

struct Connection {
    std::string client_ip;
    std::unique_ptr<MessageSession> message;
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
    std::string line;
    std::string qid = macro(ctx, "i");
    line.append("qid=").append(qid.empty() ? "NOQUEUE" : qid);
    line.append(" client=").append(c.client_ip);
    const MessageSession* m = c.message.get();
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
    int rc = smfi_setmlreply(ctx, code, r.enhanced.c_str(), l[0], l[1], l[2], l[3], l[4], l[5], l[6], l[7],
                             l[8], l[9], l[10], l[11], l[12], l[13], l[14], l[15], l[16], l[17], l[18], l[19],
                             l[20], l[21], l[22], l[23], l[24], l[25], l[26], l[27], l[28], l[29], l[30], l[31],
                             static_cast<char*>(nullptr));
    if (rc != MI_SUCCESS) Logger::log(Logger::Level::warning, "smfi_setmlreply failed; the MTA uses its default reply");
    return r.code / 100 == 4 ? SMFIS_TEMPFAIL : SMFIS_REJECT;
}

sfsistat answer(SMFICTX* ctx, Connection& c, const Verdict& v, std::string_view rcpt = {}) {
    if (c.message)
        for (const Verdict& note : c.message->take_notes()) log_decision(ctx, c, note, rcpt);
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

unsigned long g_wanted_steps = 0;  // set in main() before smfi_main()

sfsistat on_negotiate(SMFICTX*, unsigned long f0, unsigned long f1, unsigned long, unsigned long,
                      unsigned long* pf0, unsigned long* pf1, unsigned long* pf2, unsigned long* pf3) {
    *pf0 = SMFIF_ADDHDRS & f0;
    *pf1 = g_wanted_steps & f1;
    g_protocol_steps = *pf1;
    *pf2 = *pf3 = 0;
    return SMFIS_CONTINUE;
}

sfsistat on_connect(SMFICTX* ctx, char*, _SOCK_ADDR* addr) {
    return guarded(ctx, "connect", [&] {
        auto c = std::make_unique<Connection>();
        std::optional<IpAddress> ip = addr ? ip_from_sockaddr(addr) : std::nullopt;
        c->client_ip = ip ? ip->to_string() : "unknown";
        const GlobalSettings& g = g_services.config->global();
        bool applies = g.apply_to != ApplyTo::networks || (ip && contains(g.apply_to_networks, *ip));
        smfi_setpriv(ctx, c.release());  // owned by the connection; freed in on_close
        if (g_protocol_steps & SMFIP_NR_CONN) return SMFIS_NOREPLY;
        return applies ? SMFIS_CONTINUE : SMFIS_ACCEPT;
    });
}

sfsistat on_envfrom(SMFICTX* ctx, char** argv) {
    return guarded(ctx, "MAIL FROM", [&] {
        Connection* c = connection(ctx);
        if (!c) throw std::runtime_error("no connection state");
        if (g_services.config->global().apply_to == ApplyTo::authenticated && macro(ctx, "{auth_authen}").empty())
            return SMFIS_ACCEPT;  // not ours to check: unauthenticated clients are out of scope
        c->message = std::make_unique<MessageSession>(g_services);
        std::vector<std::string_view> args;
        for (char** a = argv + 1; *argv && *a; ++a) args.emplace_back(*a);
        return answer(ctx, *c, c->message->mail_from(argv[0] ? argv[0] : "", args));
    });
}

sfsistat on_envrcpt(SMFICTX* ctx, char** argv) {
    return guarded(ctx, "RCPT TO", [&] {
        Connection* c = connection(ctx);
        if (!c || !c->message) throw std::runtime_error("RCPT without MAIL FROM state");
        std::string_view rcpt = argv[0] ? argv[0] : "";
        return answer(ctx, *c, c->message->rcpt_to(rcpt), rcpt);
    });
}

sfsistat on_header(SMFICTX* ctx, char* name, char* value) {
    return guarded(ctx, "header", [&] {
        Connection* c = connection(ctx);
        if (!c || !c->message) throw std::runtime_error("header without MAIL FROM state");
        c->message->header(name ? name : "", value ? value : "");
        return (g_protocol_steps & SMFIP_NR_HDR) ? SMFIS_NOREPLY : SMFIS_CONTINUE;
    });
}

sfsistat on_eoh(SMFICTX* ctx) {
    return guarded(ctx, "end of headers", [&] {
        Connection* c = connection(ctx);
        if (!c || !c->message) throw std::runtime_error("end of headers without MAIL FROM state");
        c->message->end_of_headers();
        return (g_protocol_steps & SMFIP_NR_EOH) ? SMFIS_NOREPLY : SMFIS_CONTINUE;
    });
}

sfsistat on_body(SMFICTX* ctx, unsigned char* chunk, size_t len) {
    return guarded(ctx, "body", [&] {
        Connection* c = connection(ctx);
        if (!c || !c->message) throw std::runtime_error("body without MAIL FROM state");
        Verdict v = c->message->body({reinterpret_cast<const char*>(chunk), len});
        if (g_protocol_steps & SMFIP_NR_BODY) return SMFIS_NOREPLY;  // end_of_message() repeats a refusal
        return answer(ctx, *c, v);
    });
}

sfsistat on_eom(SMFICTX* ctx) {
    return guarded(ctx, "end of message", [&] {
        Connection* c = connection(ctx);
        if (!c || !c->message) throw std::runtime_error("end of message without MAIL FROM state");
        Verdict v = c->message->end_of_message();
        sfsistat s = answer(ctx, *c, v);
        if (s != SMFIS_CONTINUE) return s;
        for (const TagHeader& h : c->message->tag_headers()) {
            // With SMFIP_HDR_LEADSPC the value is taken verbatim: the blank after the colon is ours.
            std::string value;
            if (g_protocol_steps & SMFIP_HDR_LEADSPC) value = ' ';
            value += h.value;
            if (smfi_addheader(ctx, const_cast<char*>(h.name.c_str()), value.data()) != MI_SUCCESS)
                Logger::log(Logger::Level::warning, "could not add header " + h.name);
        }
        log_decision(ctx, *c, Verdict::accept("all"), {});
        c->message.reset();
        return SMFIS_CONTINUE;
    });
}

sfsistat on_abort(SMFICTX* ctx) {
    if (Connection* c = connection(ctx)) c->message.reset();
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
    "  -c FILE  configuration (default /etc/preflight/preflight.conf)\n";

// The identity UserID names, looked up while we can still read every database.
struct RunAs {
    std::string user;
    uid_t uid = 0;
    gid_t gid = 0;
};

std::optional<RunAs> resolve_user(const GlobalSettings& g) {
    const passwd* pw = getpwnam(g.user.c_str());
    if (!pw) {
        std::cerr << "preflight-milter: UserID: no user '" << g.user << "'\n";
        return std::nullopt;
    }
    RunAs who{pw->pw_name, pw->pw_uid, pw->pw_gid};
    if (!g.group.empty()) {
        const group* gr = getgrnam(g.group.c_str());
        if (!gr) {
            std::cerr << "preflight-milter: UserID: no group '" << g.group << "'\n";
            return std::nullopt;
        }
        who.gid = gr->gr_gid;
    }
    return who;
}

bool drop_privileges(const RunAs& who) {
    if (initgroups(who.user.c_str(), who.gid) != 0 || setgid(who.gid) != 0 || setuid(who.uid) != 0) {
        std::cerr << "preflight-milter: cannot become " << who.user << ": " << std::strerror(errno) << "\n";
        return false;
    }
    return true;
}

}  // namespace
}  // namespace preflight

int main(int argc, char** argv) {
    using namespace preflight;
    std::string conf_path = "/etc/preflight/preflight.conf";
    bool foreground = false, check_only = false;
    for (int i = 1; i < argc; ++i) {
        std::string a = argv[i];
        if (a == "-f") foreground = true;
        else if (a == "-n") check_only = true;
        else if (a == "-c" && i + 1 < argc) conf_path = argv[++i];
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

    ParseResult parsed = parse_config_file(conf_path);
    if (!parsed.ok()) {
        for (const ConfigError& e : parsed.errors) std::cerr << e.to_string() << "\n";
        return 2;
    }
    if (check_only) {
        std::cout << conf_path << ": ok\n";
        return 0;
    }
    const GlobalSettings& g = parsed.config->global();
    Logger::init("preflight-milter", foreground || !g.syslog, to_syslog_facility(g.log_facility));

    std::unique_ptr<CachingResolver> resolver;
    try {
        resolver = std::make_unique<CachingResolver>(
            std::make_unique<LdnsResolver>(g.nameservers, g.dns_timeout), g.dns_cache_size,
            DnsCacheOptions{std::chrono::seconds(5), g.dns_timeout + std::chrono::seconds(1)});
    } catch (const std::exception& e) {  // e.g. an unreadable /etc/resolv.conf
        std::cerr << "preflight-milter: DNS: " << e.what() << "\n";
        return 1;
    }
    g_wanted_steps = wanted_protocol_steps(*parsed.config);
    g_services.config = parsed.config;
    g_services.resolver = resolver.get();
    for (const IpAddress& ip : g.egress_addresses) g_services.egress_ips.push_back(ip.to_string());

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
        return 1;
    }
    std::optional<RunAs> run_as;
    if (!g.user.empty() && !(run_as = resolve_user(g))) return 2;
    // The socket is created with the conf's umask, replacing a stale unix socket.
    mode_t old_umask = ::umask(static_cast<mode_t>(g.umask));
    int opened = smfi_opensocket(true);
    ::umask(old_umask);
    if (opened != MI_SUCCESS) {
        std::cerr << "preflight-milter: cannot open socket " << g.socket.postfix() << "\n";
        return 1;
    }
    // A unix socket is made while we are still root: hand it to UserID, or with the default
    // Umask 007 only root could connect, and the MTA (user postfix, group UserID's) could not.
    if (run_as && g.socket.kind == SocketSpec::Kind::unix_socket &&
        ::chown(g.socket.path.c_str(), run_as->uid, run_as->gid) != 0) {
        std::cerr << "preflight-milter: cannot give " << g.socket.path << " to " << run_as->user << ": "
                  << std::strerror(errno) << "\n";
        return 1;
    }
    if (!foreground && daemon(0, 0) != 0) {
        std::cerr << "preflight-milter: cannot detach: " << std::strerror(errno) << "\n";
        return 1;
    }
    if (!g.pid_file.empty()) {
        std::ofstream pid(g.pid_file, std::ios::trunc);
        pid << getpid() << "\n";
        if (!pid) Logger::log(Logger::Level::warning, "cannot write PidFile " + g.pid_file);
    }
    if (run_as && !drop_privileges(*run_as)) return 1;
    Logger::log(Logger::Level::info, "starting: socket " + g.socket.postfix() + ", conf " + conf_path);
    int rc = smfi_main();
    Logger::log(Logger::Level::info, "stopped");
    if (!g.pid_file.empty()) ::unlink(g.pid_file.c_str());
    return rc == MI_SUCCESS ? 0 : 1;
}
