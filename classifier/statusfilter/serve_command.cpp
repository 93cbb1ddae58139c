// `preflight-classify serve`: Postfix socketmap server for the delivery status filter.
//
// Protocol (Postfix socketmap_table(5)): each request is a netstring "NAME KEY", each reply a
// netstring "OK DATA", "NOTFOUND ", "TEMP reason" or "PERM reason". Postfix keeps a connection
// per delivery agent process and sends one request at a time; the key is "X.Y.Z text".
//
// Design: one epoll event loop per thread (default: one thread per core), each with its own
// connections, scratch buffers and counters; the listening socket is in every loop's epoll set
// with EPOLLEXCLUSIVE, so the kernel hands a new connection to one idle loop. Why not a thread
// per connection or a pool fed by one loop: Postfix holds hundreds of mostly idle connections
// (one per smtp/lmtp/local process) and each answer costs about a microsecond of CPU, so the
// costs that matter are syscalls and hand-overs. An event loop per core keeps every request on
// the thread that read it (no locks, no queues), idle connections cost a few hundred bytes, and
// nothing in a loop blocks: the classification is pure CPU on an immutable RuleSet, so no
// request waits behind another for longer than it takes to classify what is already read.
//
// Bounds: a request over --max-request bytes (known from its length prefix) and a framing
// error are answered with PERM and the connection is closed; a connection that sends nothing
// (or does not read its replies) for --idle-timeout seconds is closed; a connection whose
// unread replies exceed kMaxPendingOut is not read until it catches up; at most
// --max-connections are open at once (more are accepted and closed at once).
//
// Signals: SIGTERM, SIGINT and SIGHUP are blocked in every thread and taken by sigwait() in the
// main thread. SIGTERM/SIGINT wake the loops through an eventfd; SIGHUP reads the rule files and
// the policy again into a new Engine, swapped in whole (a broken file is logged with FILE:LINE
// and the running engine stays); each batch of requests uses the engine it started with; the unix socket is removed on exit if it is
// still ours (same inode). A stale unix socket (nobody accepts on it) is replaced at start; a
// live one, or a path that is not a socket, is an error.
#include "serve_command.hpp"

#include "arg_parser.hpp"
#include "logger.hpp"
#include "unique_fd.hpp"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <array>
#include <atomic>
#include <cerrno>
#include <charconv>
#include <chrono>
#include <cstring>
#include <iostream>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <system_error>
#include <thread>
#include <unordered_map>
#include <vector>

#include "command_common.hpp"
#include "daemon.hpp"
#include "socket_address.hpp"
#include "metrics.hpp"
#include "metrics_server.hpp"
#include "netstring.hpp"
#include "reply_classifier.hpp"
#include "run_as.hpp"
#include "status_filter.hpp"

namespace preflight {
namespace {

constexpr std::string_view kMapName = "status";
constexpr std::size_t kReadChunk = 64 * 1024;
constexpr std::size_t kMaxPendingOut = 256 * 1024;
constexpr int kMaxEvents = 256;

const char kUsage[] =
    "usage: preflight-classify serve --listen SOCKET [--policy FILE] [--rules FILE]...\n"
    "                                [--threads N] [--idle-timeout SECONDS] [--max-connections N]\n"
    "                                [--max-request BYTES] [--socket-mode OCTAL] [--metrics-listen ADDR:PORT]\n"
    "                                [--user USER[:GROUP] | --run-as-root] [--pid-file FILE] [--verbose]\n"
    "                                [--check]\n"
    "  Postfix socketmap server for smtp_/lmtp_/local_delivery_status_filter (map name 'status').\n"
    "  --listen           unix:/PATH (a stale socket is replaced), inet:ADDR:PORT, inet:[IPV6]:PORT,\n"
    "                     inet:PORT@ADDR or inet6:PORT@ADDR: the milter's Socket grammar, address literals only\n"
    "  --policy           per-category decisions keep|defer|bounce (default: the built-in policy)\n"
    "  --rules            site rule file, evaluated before the shipped rules (repeatable)\n"
    "  --threads          event loops (default: one per core)\n"
    "  --idle-timeout     close a connection idle this long (default 60)\n"
    "  --max-connections  open connections at most (default 1024)\n"
    "  --max-request      request netstring payload at most, bytes (default 65536)\n"
    "  --socket-mode      permissions of a unix socket (default 0660: its owner and group only)\n"
    "  --user             started as root: after opening the socket, give a unix socket to USER\n"
    "                     and GROUP (default: USER's group) and run as them (e.g. preflight:postfix)\n"
    "  --run-as-root      started as root without --user: stay root (refused otherwise)\n"
    "  --pid-file         write the process id to FILE (as root, before switching user); removed at exit\n"
    "  --metrics-listen   serve Prometheus metrics at http://ADDR:PORT/metrics (an address literal,\n"
    "                     [v6] in brackets; loopback advised: no authentication)\n"
    "  --verbose          log every request and its answer to stderr\n"
    "  --check            load rules and policy, print the policy, exit\n"
    "exit: 0 stopped by SIGTERM/SIGINT or --check passed, 1 cannot serve, 2 usage, policy or rule error\n";

std::string errno_text() { return std::strerror(errno); }

// The listening socket; a unix socket's path is removed on destruction if it is still ours.
class Listener {
public:
    Listener() = default;
    Listener(const Listener&) = delete;
    Listener& operator=(const Listener&) = delete;
    int fd() const { return fd_.get(); }
    const std::string& unix_path() const { return path_; }  // empty for inet

    // nullptr after writing the reason to err.
    static std::unique_ptr<Listener> open(const SocketAddress& where, mode_t mode, std::string& err) {
        auto owned = std::make_unique<Listener>();
        Listener& l = *owned;
        const bool unix_socket = where.kind == SocketAddress::Kind::unix_socket;
        const bool v6 = where.kind == SocketAddress::Kind::inet6;
        l.fd_ = UniqueFd(::socket(unix_socket ? AF_UNIX
                                  : v6        ? AF_INET6
                                              : AF_INET,
                                  SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0));
        if (!l.fd_) {
            err = "socket: " + errno_text();
            return nullptr;
        }
        if (unix_socket) {
            if (!l.bind_unix(where.path, mode, err)) return nullptr;
        } else {
            int one = 1;
            ::setsockopt(l.fd(), SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
            sockaddr_storage ss{};
            socklen_t len = 0;
            if (v6) {
                auto* a = reinterpret_cast<sockaddr_in6*>(&ss);
                a->sin6_family = AF_INET6;
                a->sin6_port = htons(where.port);
                ::inet_pton(AF_INET6, where.host.c_str(), &a->sin6_addr);  // a literal: parse_socket_address
                len = sizeof *a;
            } else {
                auto* a = reinterpret_cast<sockaddr_in*>(&ss);
                a->sin_family = AF_INET;
                a->sin_port = htons(where.port);
                ::inet_pton(AF_INET, where.host.c_str(), &a->sin_addr);
                len = sizeof *a;
            }
            if (::bind(l.fd(), reinterpret_cast<const sockaddr*>(&ss), len) != 0) {
                err = "bind " + where.postfix() + ": " + errno_text();
                return nullptr;
            }
        }
        if (::listen(l.fd(), SOMAXCONN) != 0) {
            err = "listen " + where.postfix() + ": " + errno_text();
            return nullptr;
        }
        return owned;
    }

private:
    static sockaddr_un unix_address(const std::string& path) {
        sockaddr_un a{};
        a.sun_family = AF_UNIX;
        std::memcpy(a.sun_path, path.c_str(), path.size() + 1);  // length checked by parse_listen
        return a;
    }

    // Binds with the socket file created in mode (umask set around bind: fchmod does not apply
    // to a socket's path, and a chmod after bind would leave a window). A stale socket (the
    // path is a socket and connecting to it is refused) is removed and the bind retried once.
    bool bind_unix(const std::string& path, mode_t mode, std::string& err) {
        const sockaddr_un a = unix_address(path);
        auto try_bind = [&] {
            mode_t old = ::umask(~mode & 0777);
            int rc = ::bind(fd(), reinterpret_cast<const sockaddr*>(&a), sizeof a);
            int saved = errno;
            ::umask(old);
            errno = saved;
            return rc == 0;
        };
        if (!try_bind()) {
            if (errno != EADDRINUSE) {
                err = "bind unix:" + path + ": " + errno_text();
                return false;
            }
            struct stat st;
            if (::lstat(path.c_str(), &st) != 0 || !S_ISSOCK(st.st_mode)) {
                err = "unix:" + path + " exists and is not a socket; not replacing it";
                return false;
            }
            UniqueFd probe(::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0));
            if (probe && ::connect(probe.get(), reinterpret_cast<const sockaddr*>(&a), sizeof a) == 0) {
                err = "unix:" + path + " is in use by a running server";
                return false;
            }
            if (errno != ECONNREFUSED) {
                err = "unix:" + path + " exists and cannot be probed: " + errno_text();
                return false;
            }
            if (::unlink(path.c_str()) != 0 || !try_bind()) {
                err = "replacing stale unix:" + path + ": " + errno_text();
                return false;
            }
        }
        path_ = path;
        remove_at_exit_.remember(path);
        return true;
    }

    UniqueFd fd_;
    std::string path_;
    RemoveAtExit remove_at_exit_;  // our socket file, unless another server replaced it
};

// What /metrics shows (--metrics-listen): requests by answer, decisions by category, connections,
// and the time each answer took to compute. Shared by the loops: relaxed atomic adds only.
struct ServeMetrics {
    enum Answer : std::size_t { ok, notfound, temp, perm, kAnswers };
    static constexpr std::array<const char*, kAnswers> kAnswerNames = {"OK", "NOTFOUND", "TEMP", "PERM"};
    static constexpr std::size_t kDecisions = 3;  // Decision::keep, defer, bounce

    std::array<metrics::Counter, kAnswers> answers;
    std::array<metrics::Counter, kCategoryCount * kDecisions> decisions;
    metrics::Counter not_delivery_status, unclassified;
    metrics::Counter connections_total;
    // Classification is CPU only: about a microsecond, far more for a pathological text.
    metrics::Histogram request_seconds{0.000001, 0.0000025, 0.000005, 0.00001, 0.000025, 0.00005,
                                       0.0001,   0.00025,   0.0005,   0.001,   0.01,     0.1};

    void count(const FilterResult& r) {
        switch (r.kind) {
        case FilterResult::Kind::not_delivery_status: not_delivery_status.inc(); break;
        case FilterResult::Kind::unclassified: unclassified.inc(); break;
        case FilterResult::Kind::decided:
            decisions[static_cast<std::size_t>(r.category) * kDecisions + static_cast<std::size_t>(r.decision)].inc();
            break;
        }
    }

    void register_with(metrics::Registry& reg, const std::atomic<int>& open) const {
        for (std::size_t i = 0; i < kAnswers; ++i)
            reg.add("preflight_classify_requests_total", "Socketmap requests, by answer.", answers[i],
                    {{"answer", kAnswerNames[i]}});
        for (int c = 0; c < kCategoryCount; ++c)
            for (std::size_t d = 0; d < kDecisions; ++d)
                reg.add("preflight_classify_decisions_total",
                        "Delivery statuses classified, by category and the policy's decision.",
                        decisions[static_cast<std::size_t>(c) * kDecisions + d],
                        {{"category", std::string(to_string(static_cast<Category>(c)))},
                         {"decision", std::string(to_string(static_cast<Decision>(d)))}});
        reg.add("preflight_classify_unclassified_total", "Keys left alone without a decision, by reason.",
                not_delivery_status, {{"reason", "not-delivery-status"}});
        reg.add("preflight_classify_unclassified_total", "Keys left alone without a decision, by reason.", unclassified,
                {{"reason", "no-category"}});
        reg.add_callback("preflight_classify_connections", "Socketmap connections open now.", metrics::Type::gauge,
                         [&open] { return static_cast<double>(open.load(std::memory_order_relaxed)); });
        reg.add("preflight_classify_connections_total", "Socketmap connections accepted.", connections_total);
        reg.add("preflight_classify_request_duration_seconds",
                "Time to classify a request and write its answer into the output buffer (no network I/O).",
                request_seconds);
    }
};

struct Settings {
    std::chrono::seconds idle_timeout{60};
    std::size_t max_request = 65536;
    int max_connections = 1024;
    bool verbose = false;  // log every request and its answer
};

// The rules and the policy: immutable, replaced whole on SIGHUP.
struct Engine {
    ReplyClassifier classifier;
    StatusPolicy policy;
};

// The running engine, replaced whole on SIGHUP. A loop checks the generation (one atomic load
// per batch of requests) and copies the pointer under the mutex only after a reload.
// (Not std::atomic<std::shared_ptr>: GCC 12's load releases its internal lock with relaxed
// order, which ThreadSanitizer rightly reports as a race with the next store.)
class EngineSlot {
public:
    EngineSlot(std::shared_ptr<const Engine> e) : engine_(std::move(e)) {}
    void store(std::shared_ptr<const Engine> e) {
        std::lock_guard lock(mu_);
        engine_.swap(e);
        generation_.fetch_add(1, std::memory_order_release);
    }  // the old engine goes with `e`, after the unlock, unless a loop still holds it
    // Brings `cached` up to date; `seen` is the caller's generation of it.
    void refresh(std::shared_ptr<const Engine>& cached, std::uint64_t& seen) const {
        if (cached && generation_.load(std::memory_order_acquire) == seen) return;
        std::lock_guard lock(mu_);
        cached = engine_;
        seen = generation_.load(std::memory_order_relaxed);
    }

private:
    mutable std::mutex mu_;
    std::shared_ptr<const Engine> engine_;
    std::atomic<std::uint64_t> generation_{0};
};

// What every loop shares: read-only apart from the engine slot, the connection count and the
// failure flag.
struct Shared {
    EngineSlot engine;
    Settings settings;
    int listen_fd;
    int stop_fd;  // eventfd: readable once the server stops
    std::atomic<int> connections{0};
    std::atomic<bool> failed{false};
    ServeMetrics* metrics = nullptr;  // with --metrics-listen
};

struct Conn {
    UniqueFd fd;
    std::string in;   // a partial request carried over between reads
    std::string out;  // replies not yet written, from out_off
    std::size_t out_off = 0;
    std::uint32_t events = 0;  // what epoll watches for
    bool close_after = false;  // close once out is written (after a PERM for bad framing)
    std::chrono::steady_clock::time_point last;
};

// One line per request on stderr: "request -> reply", both as netstring payloads. One write(2)
// per line, so that lines of different threads do not interleave.
// request="status 5.1.1 host mx said: ..." answer="OK 4.1.1 ...": both written by strangers
// (the remote server's words), so quoted and stripped of control characters.
void log_answer(std::string_view req, std::string_view reply_netstring) {
    Netstring ns = parse_netstring(reply_netstring, reply_netstring.size());
    std::string line;
    append_quoted(line, "request", req.substr(0, 1000));
    append_quoted(line, "answer", ns.payload.substr(0, 1000));
    Logger::log(Logger::Level::info, line);
}

// Answers one request payload "NAME KEY" into out.
// Returns the kind of answer, for the metrics.
ServeMetrics::Answer answer_one(std::string_view req, const Engine& engine, const Shared& shared, std::string& scratch,
                                std::string& out, std::uint64_t& changed) {
    std::size_t sp = req.find(' ');
    if (sp == std::string_view::npos) {
        append_netstring(out, "PERM malformed request: want 'NAME KEY'");
        return ServeMetrics::perm;
    }
    std::string_view name = req.substr(0, sp), key = req.substr(sp + 1);
    if (name != kMapName) {
        append_netstring(out, "PERM unknown map '", name.substr(0, 64), "': want 'status'");
        return ServeMetrics::perm;
    }
    FilterResult r = filter_status(key, engine.classifier, engine.policy, scratch);
    if (shared.metrics) shared.metrics->count(r);
    if (!r.new_class) {
        append_netstring(out, "NOTFOUND ");
        return ServeMetrics::notfound;
    }
    ++changed;
    append_netstring(out, "OK ", std::string_view(&r.new_class, 1), key.substr(1));
    return ServeMetrics::ok;
}

// answer_one, and with --verbose a log line.
void answer(std::string_view req, const Engine& engine, const Shared& shared, std::string& scratch, std::string& out,
            std::uint64_t& changed) {
    const std::size_t before = out.size();
    if (ServeMetrics* m = shared.metrics) {
        const auto t0 = std::chrono::steady_clock::now();
        ServeMetrics::Answer a = answer_one(req, engine, shared, scratch, out, changed);
        m->request_seconds.observe(std::chrono::steady_clock::now() - t0);
        m->answers[a].inc();
    } else {
        answer_one(req, engine, shared, scratch, out, changed);
    }
    if (shared.settings.verbose) log_answer(req, std::string_view(out).substr(before));
}

class Loop {
public:
    explicit Loop(Shared& shared) : shared_(shared), rbuf_(kReadChunk) {}

    void run() {
        ep_ = UniqueFd(::epoll_create1(EPOLL_CLOEXEC));
        if (!ep_ || !watch_listener() || !add(shared_.stop_fd, EPOLLIN, &stop_tag_)) {
            fail("epoll: " + errno_text());
            return;
        }
        std::vector<epoll_event> events(kMaxEvents);
        auto last_sweep = std::chrono::steady_clock::now();
        for (;;) {
            int n = ::epoll_wait(ep_.get(), events.data(), kMaxEvents, 1000);
            if (n < 0 && errno != EINTR) {
                fail("epoll_wait: " + errno_text());
                return;
            }
            now_ = std::chrono::steady_clock::now();
            for (int i = 0; i < n; ++i) {
                void* tag = events[static_cast<std::size_t>(i)].data.ptr;
                std::uint32_t ev = events[static_cast<std::size_t>(i)].events;
                if (tag == &stop_tag_) return;
                if (tag == &listen_tag_) accept_some();
                else on_event(*static_cast<Conn*>(tag), ev);
            }
            if (now_ - last_sweep >= std::chrono::seconds(1)) {
                last_sweep = now_;
                sweep();
            }
        }
    }

    ~Loop() { shared_.connections -= static_cast<int>(conns_.size()); }

    std::uint64_t requests() const { return requests_; }
    std::uint64_t changed() const { return changed_; }
    std::uint64_t accepted() const { return accepted_; }

private:
    bool add(int fd, std::uint32_t events, void* tag) {
        epoll_event e{};
        e.events = events;
        e.data.ptr = tag;
        return ::epoll_ctl(ep_.get(), EPOLL_CTL_ADD, fd, &e) == 0;
    }
    bool watch_listener() {
        listening_ = add(shared_.listen_fd, EPOLLIN | EPOLLEXCLUSIVE, &listen_tag_);
        return listening_;
    }
    void fail(const std::string& what) {
        Logger::log(Logger::Level::error, what);
        shared_.failed = true;
        ::kill(::getpid(), SIGTERM);  // the main thread's sigwait stops the others
    }
    // Rate-limited to one message per second per loop.
    void warn(const std::string& what) {
        if (now_ - last_warning_ < std::chrono::seconds(1)) return;
        last_warning_ = now_;
        Logger::log(Logger::Level::warning, what);
    }

    void accept_some() {
        for (int k = 0; k < 64; ++k) {
            UniqueFd fd(::accept4(shared_.listen_fd, nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC));
            if (!fd) {
                if (errno == EAGAIN || errno == EWOULDBLOCK) return;
                if (errno == EINTR || errno == ECONNABORTED) continue;
                // Out of descriptors or memory: stop accepting in this loop until the next
                // sweep rather than spin on a listener that stays readable.
                warn("accept: " + errno_text() + "; pausing accepts for a second");
                ::epoll_ctl(ep_.get(), EPOLL_CTL_DEL, shared_.listen_fd, nullptr);
                listening_ = false;
                return;
            }
            if (shared_.connections.fetch_add(1) >= shared_.settings.max_connections) {
                --shared_.connections;
                warn("over " + std::to_string(shared_.settings.max_connections) + " connections; closing new ones");
                continue;  // fd closes here
            }
            int one = 1;
            ::setsockopt(fd.get(), IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);  // fails on unix: fine
            auto conn = std::make_unique<Conn>();
            conn->fd = std::move(fd);
            conn->events = EPOLLIN;
            conn->last = now_;
            Conn* c = conn.get();
            if (!add(c->fd.get(), c->events, c)) {
                --shared_.connections;
                warn("epoll_ctl: " + errno_text());
                continue;
            }
            conns_.emplace(c, std::move(conn));
            ++accepted_;
            if (shared_.metrics) shared_.metrics->connections_total.inc();
        }
    }

    void close_conn(Conn& c) {
        --shared_.connections;
        conns_.erase(&c);  // closing the fd removes it from the epoll set
    }

    void on_event(Conn& c, std::uint32_t ev) {
        if (ev & EPOLLIN) {
            if (!on_readable(c)) return;
        } else if (ev & (EPOLLERR | EPOLLHUP)) {
            close_conn(c);
            return;
        }
        if (ev & EPOLLOUT) flush(c);
    }

    // False if the connection was closed.
    bool on_readable(Conn& c) {
        ssize_t n = ::read(c.fd.get(), rbuf_.data(), rbuf_.size());
        if (n <= 0) {
            if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR)) return true;
            close_conn(c);  // EOF or a reset: whatever is unanswered has nobody to go to
            return false;
        }
        c.last = now_;
        std::string_view data(rbuf_.data(), static_cast<std::size_t>(n));
        if (!c.in.empty()) {
            c.in.append(data);
            data = c.in;
        }
        std::size_t used = serve_requests(c, data);
        if (c.close_after) c.in.clear();
        else if (c.in.empty()) c.in.assign(data.substr(used));
        else c.in.erase(0, used);
        return flush(c);
    }

    // Answers the complete requests at the start of data; returns the bytes they took.
    std::size_t serve_requests(Conn& c, std::string_view data) {
        std::size_t used = 0;
        // One engine for the batch: a reload swaps it between batches, never mid-request.
        shared_.engine.refresh(engine_, engine_generation_);
        const Engine& engine = *engine_;
        while (used < data.size()) {
            Netstring ns = parse_netstring(data.substr(used), shared_.settings.max_request);
            switch (ns.status) {
            case Netstring::Status::complete:
                answer(ns.payload, engine, shared_, scratch_, c.out, changed_);
                ++requests_;
                used += ns.consumed;
                continue;
            case Netstring::Status::incomplete: return used;
            case Netstring::Status::too_long:
                if (shared_.metrics) shared_.metrics->answers[ServeMetrics::perm].inc();
                append_netstring(c.out, "PERM request longer than ", std::to_string(shared_.settings.max_request),
                                 " bytes");
                c.close_after = true;
                return used;
            case Netstring::Status::malformed:
                if (shared_.metrics) shared_.metrics->answers[ServeMetrics::perm].inc();
                append_netstring(c.out, "PERM malformed netstring");
                c.close_after = true;
                return used;
            }
        }
        return used;
    }

    // Writes what it can; adjusts what epoll watches. False if the connection was closed.
    bool flush(Conn& c) {
        while (c.out_off < c.out.size()) {
            ssize_t n = ::send(c.fd.get(), c.out.data() + c.out_off, c.out.size() - c.out_off, MSG_NOSIGNAL);
            if (n < 0) {
                if (errno == EINTR) continue;
                if (errno == EAGAIN || errno == EWOULDBLOCK) break;
                close_conn(c);
                return false;
            }
            c.out_off += static_cast<std::size_t>(n);
            c.last = now_;
        }
        std::size_t pending = c.out.size() - c.out_off;
        if (pending == 0) {
            c.out.clear();
            c.out_off = 0;
            if (c.close_after) {
                close_conn(c);
                return false;
            }
        }
        std::uint32_t want = (pending ? EPOLLOUT : 0u) | (!c.close_after && pending < kMaxPendingOut ? EPOLLIN : 0u);
        if (want != c.events) {
            epoll_event e{};
            e.events = want;
            e.data.ptr = &c;
            if (::epoll_ctl(ep_.get(), EPOLL_CTL_MOD, c.fd.get(), &e) != 0) {
                close_conn(c);
                return false;
            }
            c.events = want;
        }
        return true;
    }

    void sweep() {
        if (!listening_) watch_listener();
        std::vector<Conn*> idle;
        for (auto& [c, owned] : conns_)
            if (now_ - c->last >= shared_.settings.idle_timeout) idle.push_back(c);
        for (Conn* c : idle) close_conn(*c);
    }

    Shared& shared_;
    UniqueFd ep_;
    std::vector<char> rbuf_;
    std::string scratch_;
    std::shared_ptr<const Engine> engine_;  // this loop's copy of the running engine
    std::uint64_t engine_generation_ = 0;
    std::unordered_map<Conn*, std::unique_ptr<Conn>> conns_;
    std::chrono::steady_clock::time_point now_{}, last_warning_{};
    bool listening_ = false;
    char listen_tag_ = 0, stop_tag_ = 0;
    std::uint64_t requests_ = 0, changed_ = 0, accepted_ = 0;
};

// The rules (site files, then the shipped ones) and the policy, or nullptr with why set to the
// policy error ("preflight-classify: FILE:LINE: reason\n"; a rule error is printed at once).
std::shared_ptr<const Engine> load_engine(const std::string& policy_file, const std::vector<std::string>& rule_files,
                                          std::string& why) {
    why.clear();
    StatusPolicy policy;
    if (!policy_file.empty()) {
        try {
            policy = StatusPolicy::load(policy_file);
        } catch (const PolicyError& e) {
            why = std::string("preflight-classify: ") + e.what() + "\n";
            return nullptr;
        }
    }
    std::shared_ptr<const RuleSet> rules = load_rules(rule_files);  // prints its own FILE:LINE error
    if (!rules) return nullptr;
    return std::make_shared<const Engine>(Engine{ReplyClassifier(rules), std::move(policy)});
}

void print_policy(const StatusPolicy& policy) {
    for (int i = 0; i < kCategoryCount; ++i) {
        auto c = static_cast<Category>(i);
        std::cout << "category " << to_string(c) << " " << to_string(policy.decide(c)) << "\n";
    }
}

// serve's command line.
struct ServeOptions {
    std::optional<SocketAddress> listen;
    std::optional<ListenAddress> metrics_listen;
    std::string policy_file;
    std::vector<std::string> rule_files;
    Settings settings;
    unsigned threads = std::max(1u, std::thread::hardware_concurrency());
    mode_t socket_mode = 0660;
    bool check = false;
    bool run_as_root = false;
    std::optional<UserGroup> user;
    std::string pid_file;
};

// args into o. Nothing to go on, else the exit status (0 after --help, 2 for a usage error).
std::optional<int> parse_serve_options(const std::vector<std::string>& args, ServeOptions& o) {
    using Why = std::optional<std::string>;
    unsigned long idle_seconds = static_cast<unsigned long>(o.settings.idle_timeout.count());
    ArgParser parser("serve", kUsage);
    parser.flag({"--check"}, [&] { o.check = true; })
        .flag({"--verbose", "-v"}, [&] { o.settings.verbose = true; })
        .flag({"--run-as-root"}, [&] { o.run_as_root = true; })
        .option({"--listen"},
                [&](const std::string& v) -> Why {
                    std::string why;
                    if (!(o.listen = parse_socket_address(v, &why, NameUse::literal))) return why;
                    return std::nullopt;
                })
        .option({"--metrics-listen"},
                [&](const std::string& v) -> Why {
                    if (!(o.metrics_listen = parse_listen_address(v)))
                        return "want ADDR:PORT or [IPV6]:PORT, an address literal";
                    return std::nullopt;
                })
        .option({"--policy"}, store_in(o.policy_file))
        .option({"--pid-file"}, store_in(o.pid_file))
        .option({"--rules"}, append_to(o.rule_files))
        .option({"--threads"}, whole_number(o.threads, 1, 256, "1-256"))
        .option({"--idle-timeout"}, whole_number(idle_seconds, 1, 86400, "1-86400 seconds"))
        .option({"--max-connections"}, whole_number(o.settings.max_connections, 1, 1000000, "1-1000000"))
        // An answer is as long as its request; Postfix takes answers of up to 100000 bytes.
        .option({"--max-request"}, whole_number(o.settings.max_request, 64, 99000, "64-99000 bytes"))
        .option({"--socket-mode"}, whole_number(o.socket_mode, 0, 0777, "an octal mode such as 0660", 8))
        .option({"--user"}, [&](const std::string& v) -> Why {
            if (!(o.user = parse_user_group(v))) return "want USER or USER:GROUP";
            return std::nullopt;
        });
    if (auto status = parser.parse(args)) return *status;
    o.settings.idle_timeout = std::chrono::seconds(idle_seconds);
    if (!o.listen && !o.check) {
        std::cerr << "preflight-classify serve: --listen is required\n" << kUsage;
        return 2;
    }
    return std::nullopt;
}

// The metrics endpoint --metrics-listen asks for, bound now so that a busy port is told on
// stderr; nullptr with err set when it cannot be, or (err empty) when none was asked for.
std::unique_ptr<metrics::Server> open_metrics(const ServeOptions& o, ServeMetrics& serve_metrics,
                                              metrics::Registry& registry, Shared& shared, std::string& err) {
    err.clear();
    if (!o.metrics_listen) return nullptr;
    serve_metrics.register_with(registry, shared.connections);
    try {
        auto server = std::make_unique<metrics::Server>(registry, *o.metrics_listen);
        shared.metrics = &serve_metrics;
        return server;
    } catch (const std::exception& e) {
        err = std::string("--metrics-listen: ") + e.what();
        return nullptr;
    }
}

// The answering threads, one Loop each, stopped together through the stop eventfd.
class Workers {
public:
    explicit Workers(int stop_fd) : stop_fd_(stop_fd) {}
    Workers(const Workers&) = delete;
    Workers& operator=(const Workers&) = delete;
    ~Workers() { stop(); }

    // false with err set when a thread cannot be started (those started are stopped).
    bool start(unsigned count, Shared& shared, std::string& err) {
        try {
            for (unsigned i = 0; i < count; ++i) {
                loops_.push_back(std::make_unique<Loop>(shared));
                threads_.emplace_back([l = loops_.back().get()] { l->run(); });
            }
        } catch (const std::system_error& e) {
            err = std::string("cannot start threads: ") + e.what();
            stop();
            return false;
        }
        return true;
    }
    void stop() {
        std::uint64_t one = 1;
        if (!threads_.empty() && ::write(stop_fd_, &one, sizeof one) < 0) { /* an eventfd write of 1 cannot fail */
        }
        for (auto& t : threads_) t.join();
        threads_.clear();
    }
    // "N connections, N requests, N statuses changed", once stopped.
    std::string totals() const {
        std::uint64_t requests = 0, changed = 0, accepted = 0;
        for (auto& l : loops_) requests += l->requests(), changed += l->changed(), accepted += l->accepted();
        return std::to_string(accepted) + " connections, " + std::to_string(requests) + " requests, " +
               std::to_string(changed) + " statuses changed";
    }

private:
    int stop_fd_;
    std::vector<std::unique_ptr<Loop>> loops_;
    std::vector<std::thread> threads_;
};

constexpr IdentityKnobs kServeKnobs{"preflight-classify serve", "--user", "--run-as-root"};

}  // namespace

int run_serve_command(const std::vector<std::string>& args) {
    ServeOptions o;
    if (auto status = parse_serve_options(args, o)) return *status;
    // Its lines go to stderr (systemd's journal under the unit), whole lines, strangers' words quoted.
    Logger::init("preflight-classify serve", true, 0);
    auto failed = [](const std::string& why, int status) {
        std::cerr << "preflight-classify serve: " << why << "\n";
        return status;
    };

    std::string why;
    std::shared_ptr<const Engine> engine = load_engine(o.policy_file, o.rule_files, why);
    if (!engine) {
        std::cerr << why;
        return 2;
    }
    if (o.check) {
        print_policy(engine->policy);
        return 0;
    }
    // Root only to open the socket: a status filter reads its files and answers Postfix, it
    // needs no privilege, so running on as root takes an explicit --run-as-root.
    std::optional<DaemonIdentity> identity = DaemonIdentity::decide(o.user, o.run_as_root, kServeKnobs, why);
    if (!identity) return failed(why, 2);
    const DaemonSignals signals;  // before any thread exists

    std::unique_ptr<Listener> listener = Listener::open(*o.listen, o.socket_mode, why);
    if (!listener) return failed(why, 1);
    RemoveAtExit pid_file;
    if (!listener->unix_path().empty() && !identity->hand_over(listener->unix_path(), why)) return failed(why, 1);
    if (!o.pid_file.empty()) {
        if (!write_pid_file(o.pid_file, why)) return failed("--pid-file: " + why, 1);
        pid_file.remember(o.pid_file);
    }
    if (!identity->drop_privileges(why)) return failed(why, 1);
    UniqueFd stop(::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK));
    if (!stop) return failed("eventfd: " + errno_text(), 1);
    Shared shared{engine, o.settings, listener->fd(), stop.get()};
    // Declared before the server that renders them, so that they outlive it.
    ServeMetrics serve_metrics;
    metrics::Registry registry;
    std::unique_ptr<metrics::Server> metrics_server = open_metrics(o, serve_metrics, registry, shared, why);
    if (!metrics_server && !why.empty()) return failed(why, 1);
    if (metrics_server) metrics_server->start();  // after the signal mask: SIGTERM stays with the main thread
    Workers workers(stop.get());
    if (!workers.start(o.threads, shared, why)) return failed(why, 1);
    std::string started = "listening on " + o.listen->postfix() + ", " + std::to_string(o.threads) +
                          " threads, policy " + (o.policy_file.empty() ? std::string("built-in") : o.policy_file);
    if (metrics_server) started += ", metrics on http://" + metrics_server->where() + "/metrics";
    Logger::log(Logger::Level::info, started);

    std::atomic<bool> stop_requested{false};
    const int sig = signals.run({
        .reload =
            [&] {
                // Loading takes tens of ms and the loops go on answering with the running engine.
                std::string reload_why;
                std::shared_ptr<const Engine> next = load_engine(o.policy_file, o.rule_files, reload_why);
                if (!next) {
                    std::cerr << reload_why;
                    Logger::log(Logger::Level::error, "reload failed; keeping the running rules and policy");
                    return;
                }
                shared.engine.store(std::move(next));
                Logger::log(
                    Logger::Level::info,
                    "reloaded rules and policy " + (o.policy_file.empty() ? std::string("(built-in)") : o.policy_file));
            },
        .stop = [&](int) { stop_requested = true; },
        .finished = [&] { return stop_requested.load(); },
    });
    workers.stop();
    if (metrics_server) metrics_server->stop();
    Logger::log(Logger::Level::info,
                std::string("stopped (") + (shared.failed ? "error" : strsignal(sig)) + "): " + workers.totals());
    return shared.failed ? 1 : 0;
}

}  // namespace preflight
