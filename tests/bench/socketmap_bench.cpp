// socketmap_bench: load generator for `preflight-classify serve`, behaving like Postfix's
// delivery agents: each connection has one request outstanding at a time ("status X.Y.Z text"
// netstring, wait for the reply, send the next). Reports requests/s and the latency
// distribution measured from the send of a request to its complete reply.
//
//   socketmap_bench --connect unix:PATH|inet:ADDR:PORT [--connections N] [--threads T]
//                   [--seconds S] [--warmup S]
//
// Connections are spread over T client threads, each an epoll loop. The keys cycle through a
// fixed mix of Postfix statuses (rewritten and left alone). The rate counts the replies received
// in the measured seconds. Any reply other than OK/NOTFOUND counts as an error, and so does a
// key answered otherwise than the first time (the server must be deterministic); exit 1, with
// the reason on standard error, when there was an error or no reply at all.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "netstring.hpp"

namespace {

using Clock = std::chrono::steady_clock;

const char* const kKeys[] = {
    "5.2.2 host mx.example[192.0.2.10] said: 552 5.2.2 Mailbox full (in reply to RCPT TO command)",
    "4.1.1 host mx.example[192.0.2.10] said: 450 4.1.1 <bob@example.org>: Recipient address rejected: "
    "User unknown (in reply to RCPT TO command)",
    "5.1.1 host mx.example[192.0.2.10] said: 550 5.1.1 The email account that you tried to reach does not "
    "exist. Please try double-checking the recipient's email address for typos or unnecessary spaces. "
    "(in reply to RCPT TO command)",
    "4.7.1 host mx.example[192.0.2.10] said: 450 4.7.1 Client host rejected: cannot find your hostname "
    "(in reply to RCPT TO command)",
    "4.4.1 connect to mx.example[192.0.2.10]:25: Connection refused",
    "5.7.1 host mx.example[192.0.2.10] said: 550 5.7.1 Message rejected as spam (in reply to end of DATA "
    "command)",
    "4.4.2 conversation with mx.example[192.0.2.10] timed out while receiving the initial server greeting",
    "4.2.2 host mx.example[192.0.2.10] said: 452 4.2.2 Mailbox full (in reply to RCPT TO command)",
};

struct Target {
    bool unix_socket = true;
    sockaddr_un un{};
    sockaddr_in in{};
};

bool parse_target(std::string_view s, Target& t) {
    if (s.starts_with("unix:")) {
        std::string_view p = s.substr(5);
        if (p.empty() || p.size() >= sizeof t.un.sun_path) return false;
        t.un.sun_family = AF_UNIX;
        std::memcpy(t.un.sun_path, p.data(), p.size());
        return true;
    }
    if (s.starts_with("inet:")) {
        s.remove_prefix(5);
        std::size_t colon = s.rfind(':');
        if (colon == std::string_view::npos) return false;
        std::string host(s.substr(0, colon));
        t.unix_socket = false;
        t.in.sin_family = AF_INET;
        t.in.sin_port = htons(static_cast<std::uint16_t>(std::atoi(std::string(s.substr(colon + 1)).c_str())));
        return ::inet_pton(AF_INET, host.c_str(), &t.in.sin_addr) == 1;
    }
    return false;
}

int connect_to(const Target& t) {
    int fd = ::socket(t.unix_socket ? AF_UNIX : AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0) return -1;
    int rc = t.unix_socket ? ::connect(fd, reinterpret_cast<const sockaddr*>(&t.un), sizeof t.un)
                           : ::connect(fd, reinterpret_cast<const sockaddr*>(&t.in), sizeof t.in);
    if (rc != 0) {
        ::close(fd);
        return -1;
    }
    int one = 1;
    if (!t.unix_socket) ::setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    return fd;
}

struct Conn {
    int fd = -1;
    std::size_t next_key = 0;  // the key in flight is (next_key - 1) % the number of keys
    std::string in;
    Clock::time_point sent;
};

struct ThreadResult {
    std::uint64_t requests = 0, errors = 0, changed = 0, inconsistent = 0;
    std::vector<std::uint32_t> latency_ns;  // measured part only
    std::vector<std::string> answers;       // per key, the first reply (empty: none yet)
    std::string failure, first_error;
};

// Sends the next request on c (blocking socket: a few hundred bytes always fit).
bool send_request(Conn& c, const std::vector<std::string>& requests) {
    const std::string& r = requests[c.next_key++ % requests.size()];
    c.sent = Clock::now();
    std::size_t off = 0;
    while (off < r.size()) {
        ssize_t n = ::send(c.fd, r.data() + off, r.size() - off, MSG_NOSIGNAL);
        if (n <= 0) return false;
        off += static_cast<std::size_t>(n);
    }
    return true;
}

void run_thread(const Target& target, int connections, std::size_t first_key, Clock::time_point start_measure,
                Clock::time_point end, const std::vector<std::string>& requests, ThreadResult& res) {
    int ep = ::epoll_create1(EPOLL_CLOEXEC);
    std::vector<Conn> conns(static_cast<std::size_t>(connections));
    for (std::size_t i = 0; i < conns.size(); ++i) {
        conns[i].fd = connect_to(target);
        if (conns[i].fd < 0) {
            res.failure = std::string("connect: ") + std::strerror(errno);
            return;
        }
        conns[i].next_key = first_key + i;
        epoll_event e{};
        e.events = EPOLLIN;
        e.data.ptr = &conns[i];
        ::epoll_ctl(ep, EPOLL_CTL_ADD, conns[i].fd, &e);
        if (!send_request(conns[i], requests)) {
            res.failure = "send failed";
            return;
        }
    }
    res.latency_ns.reserve(4 << 20);
    res.answers.assign(requests.size(), std::string());
    std::vector<epoll_event> events(256);
    std::vector<char> buf(65536);
    bool done = false;
    while (!done) {
        int n = ::epoll_wait(ep, events.data(), static_cast<int>(events.size()), 1000);
        Clock::time_point now = Clock::now();
        if (now >= end) done = true;
        for (int i = 0; i < n; ++i) {
            Conn& c = *static_cast<Conn*>(events[static_cast<std::size_t>(i)].data.ptr);
            ssize_t r = ::read(c.fd, buf.data(), buf.size());
            if (r <= 0) {
                res.failure = "server closed a connection";
                return;
            }
            c.in.append(buf.data(), static_cast<std::size_t>(r));
            preflight::Netstring ns = preflight::parse_netstring(c.in, 1 << 20);
            if (ns.status == preflight::Netstring::Status::incomplete) continue;
            if (ns.status != preflight::Netstring::Status::complete) {
                res.failure = "bad netstring from the server";
                return;
            }
            std::string& first = res.answers[(c.next_key - 1) % requests.size()];
            if (first.empty()) first.assign(ns.payload);
            else if (first != ns.payload) {
                if (res.first_error.empty())
                    res.first_error = "key " + std::to_string((c.next_key - 1) % requests.size()) + " answered \"" +
                                      std::string(ns.payload) + "\" after \"" + first + "\"";
                ++res.inconsistent;
            }
            if (now >= start_measure) {
                ++res.requests;
                if (ns.payload.starts_with("OK ")) ++res.changed;
                else if (!ns.payload.starts_with("NOTFOUND")) {
                    if (res.first_error.empty()) res.first_error = "reply \"" + std::string(ns.payload) + "\"";
                    ++res.errors;
                }
                auto ns_lat = std::chrono::duration_cast<std::chrono::nanoseconds>(now - c.sent).count();
                res.latency_ns.push_back(static_cast<std::uint32_t>(std::min<long long>(ns_lat, UINT32_MAX)));
            }
            c.in.erase(0, ns.consumed);
            if (!done && !send_request(c, requests)) {
                res.failure = "send failed";
                return;
            }
        }
    }
    for (auto& c : conns) ::close(c.fd);
    ::close(ep);
}

}  // namespace

int main(int argc, char** argv) {
    std::string connect;
    int connections = 1, threads = 1;
    double seconds = 5, warmup = 1;
    for (int i = 1; i < argc; ++i) {
        std::string_view a = argv[i];
        auto next = [&]() -> const char* {
            if (i + 1 >= argc) {
                std::fprintf(stderr, "%s needs a value\n", argv[i]);
                std::exit(2);
            }
            return argv[++i];
        };
        if (a == "--connect") connect = next();
        else if (a == "--connections") connections = std::atoi(next());
        else if (a == "--threads") threads = std::atoi(next());
        else if (a == "--seconds") seconds = std::atof(next());
        else if (a == "--warmup") warmup = std::atof(next());
        else {
            std::fprintf(stderr,
                         "usage: socketmap_bench --connect unix:PATH|inet:ADDR:PORT [--connections N] "
                         "[--threads T] [--seconds S] [--warmup S]\n");
            return 2;
        }
    }
    Target target;
    if (connect.empty() || !parse_target(connect, target) || connections < 1 || threads < 1 || seconds <= 0) {
        std::fprintf(stderr, "socketmap_bench: bad arguments (see --help)\n");
        return 2;
    }
    threads = std::min(threads, connections);
    std::vector<std::string> requests;
    for (const char* k : kKeys) {
        std::string r;
        preflight::append_netstring(r, "status ", k);
        requests.push_back(r);
    }
    auto start = Clock::now();
    auto start_measure = start + std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(warmup));
    auto end = start_measure + std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(seconds));
    std::vector<ThreadResult> results(static_cast<std::size_t>(threads));
    std::vector<std::thread> ts;
    for (int t = 0; t < threads; ++t) {
        int n = connections / threads + (t < connections % threads ? 1 : 0);
        ts.emplace_back(run_thread, std::cref(target), n, static_cast<std::size_t>(t * 7919), start_measure, end,
                        std::cref(requests), std::ref(results[static_cast<std::size_t>(t)]));
    }
    for (auto& t : ts) t.join();
    ThreadResult all;
    std::vector<std::string> answers(requests.size());
    for (auto& r : results) {
        if (!r.failure.empty()) {
            std::fprintf(stderr, "socketmap_bench: %s\n", r.failure.c_str());
            return 1;
        }
        all.requests += r.requests;
        all.errors += r.errors;
        all.changed += r.changed;
        all.inconsistent += r.inconsistent;
        if (all.first_error.empty()) all.first_error = r.first_error;
        for (std::size_t k = 0; k < answers.size(); ++k) {  // threads must agree with each other too
            if (r.answers[k].empty()) continue;
            if (answers[k].empty()) answers[k] = r.answers[k];
            else if (answers[k] != r.answers[k]) {
                if (all.first_error.empty())
                    all.first_error =
                        "key " + std::to_string(k) + " answered \"" + r.answers[k] + "\" and \"" + answers[k] + "\"";
                ++all.inconsistent;
            }
        }
        all.latency_ns.insert(all.latency_ns.end(), r.latency_ns.begin(), r.latency_ns.end());
    }
    std::sort(all.latency_ns.begin(), all.latency_ns.end());
    auto pct = [&](double p) -> double {
        if (all.latency_ns.empty()) return 0;
        std::size_t i = std::min(all.latency_ns.size() - 1, static_cast<std::size_t>(p * all.latency_ns.size()));
        return all.latency_ns[i] / 1000.0;
    };
    std::printf(
        "connections %d threads %d seconds %.1f: %.0f requests/s (%llu requests, %llu rewritten, %llu "
        "errors); latency us p50 %.1f p99 %.1f p99.9 %.1f max %.1f\n",
        connections, threads, seconds, all.requests / seconds, static_cast<unsigned long long>(all.requests),
        static_cast<unsigned long long>(all.changed), static_cast<unsigned long long>(all.errors), pct(0.5), pct(0.99),
        pct(0.999), all.latency_ns.empty() ? 0.0 : all.latency_ns.back() / 1000.0);
    if (all.requests == 0) {
        std::fprintf(stderr, "socketmap_bench: no reply in the %.1f measured seconds\n", seconds);
        return 1;
    }
    if (all.errors || all.inconsistent) {
        std::fprintf(
            stderr,
            "socketmap_bench: %llu replies neither OK nor NOTFOUND, %llu answers unlike the first for their key; first: %s\n",
            static_cast<unsigned long long>(all.errors), static_cast<unsigned long long>(all.inconsistent),
            all.first_error.c_str());
        return 1;
    }
    return 0;
}
