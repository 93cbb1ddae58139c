// common/: counters, gauges, histograms, the Prometheus text format, listening addresses, and
// the HTTP server on a free loopback port.
#include <catch2/catch.hpp>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <future>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "socket_address.hpp"
#include "metrics.hpp"
#include "metrics_server.hpp"

using namespace preflight;
using namespace preflight::metrics;
using namespace std::chrono_literals;

namespace {

std::vector<std::string> lines_of(const std::string& text) {
    std::vector<std::string> out;
    std::istringstream in(text);
    for (std::string l; std::getline(in, l);) out.push_back(l);
    return out;
}

bool has_line(const std::string& text, const std::string& line) {
    for (const auto& l : lines_of(text))
        if (l == line) return true;
    return false;
}

// A plain HTTP/1.0 exchange over loopback; returns the whole response.
std::string http(std::uint16_t port, const std::string& request) {
    int fd = ::socket(AF_INET, SOCK_STREAM, 0);
    REQUIRE(fd >= 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_port = htons(port);
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    timeval tv{5, 0};
    ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    std::string out;
    if (::connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0 &&
        ::send(fd, request.data(), request.size(), MSG_NOSIGNAL) == static_cast<ssize_t>(request.size())) {
        char buf[4096];
        ssize_t n;
        while ((n = ::recv(fd, buf, sizeof buf, 0)) > 0) out.append(buf, static_cast<std::size_t>(n));
    }
    ::close(fd);
    return out;
}

}  // namespace

TEST_CASE("metrics: counters and gauges count, from several threads", "[metrics]") {
    Counter c;
    Gauge g;
    std::vector<std::thread> ts;
    for (int t = 0; t < 4; ++t)
        ts.emplace_back([&] {
            for (int i = 0; i < 10000; ++i) {
                c.inc();
                GaugeHold hold(g);
            }
        });
    for (auto& t : ts) t.join();
    CHECK(c.value() == 40000);
    CHECK(g.value() == 0);
    c.inc(5);
    CHECK(c.value() == 40005);
    g.set(-3);
    g.add(5);
    CHECK(g.value() == 2);
}

TEST_CASE("metrics: histogram buckets are upper bounds, inclusive; +Inf takes the rest", "[metrics]") {
    Histogram h{0.001, 0.01, 0.1};
    h.observe(0ns);
    h.observe(1ms);     // == the first bound: in it
    h.observe(1001us);  // just above: the second
    h.observe(100ms);
    h.observe(2s);    // +Inf
    h.observe(-5ms);  // clamped to 0
    auto s = h.snapshot();
    CHECK(s.bounds == std::vector<double>{0.001, 0.01, 0.1});
    CHECK(s.cumulative == std::vector<std::uint64_t>{3, 4, 5, 6});
    CHECK(s.count == 6);
    CHECK(s.sum == Approx(0.001 + 0.001001 + 0.1 + 2.0));

    CHECK_THROWS_AS((Histogram{0.1, 0.1}), std::invalid_argument);
    CHECK_THROWS_AS((Histogram{-1.0}), std::invalid_argument);
}

TEST_CASE("metrics: the text format", "[metrics]") {
    Registry r;
    Counter ok, temp;
    Gauge open;
    Histogram lat{0.005, 0.5};
    r.add("pf_requests_total", "Requests by answer.", ok, {{"answer", "OK"}});
    r.add("pf_requests_total", "ignored: the first help stays", temp, {{"answer", "TEMP"}});
    r.add("pf_connections", "Open connections.", open);
    r.add("pf_latency_seconds", "Latency\\with\nnewline.", lat, {{"path", "a\"b\\c\nd"}});
    r.add_callback("pf_entries", "Entries.", Type::gauge, [] { return 2.5; });
    r.add_samples("pf_sparse_total", "Sparse.", Type::counter, [](std::vector<Sample>& out) {
        out.push_back({{{"check", "size"}, {"code", "552"}}, 3});
    });
    ok.inc(7);
    open.add(2);
    lat.observe(1ms);
    lat.observe(1s);

    const std::string text = r.render();
    const std::string want =
        "# HELP pf_requests_total Requests by answer.\n"
        "# TYPE pf_requests_total counter\n"
        "pf_requests_total{answer=\"OK\"} 7\n"
        "pf_requests_total{answer=\"TEMP\"} 0\n"
        "# HELP pf_connections Open connections.\n"
        "# TYPE pf_connections gauge\n"
        "pf_connections 2\n"
        "# HELP pf_latency_seconds Latency\\\\with\\nnewline.\n"
        "# TYPE pf_latency_seconds histogram\n"
        "pf_latency_seconds_bucket{path=\"a\\\"b\\\\c\\nd\",le=\"0.005\"} 1\n"
        "pf_latency_seconds_bucket{path=\"a\\\"b\\\\c\\nd\",le=\"0.5\"} 1\n"
        "pf_latency_seconds_bucket{path=\"a\\\"b\\\\c\\nd\",le=\"+Inf\"} 2\n"
        "pf_latency_seconds_sum{path=\"a\\\"b\\\\c\\nd\"} 1.001\n"
        "pf_latency_seconds_count{path=\"a\\\"b\\\\c\\nd\"} 2\n"
        "# HELP pf_entries Entries.\n"
        "# TYPE pf_entries gauge\n"
        "pf_entries 2.5\n"
        "# HELP pf_sparse_total Sparse.\n"
        "# TYPE pf_sparse_total counter\n"
        "pf_sparse_total{check=\"size\",code=\"552\"} 3\n";
    CHECK(text == want);
}

TEST_CASE("metrics: registration errors are caught at start-up", "[metrics]") {
    Registry r;
    Counter c, d;
    Gauge g;
    CHECK_THROWS_AS(r.add("1bad", "x", c), std::invalid_argument);
    CHECK_THROWS_AS(r.add("pf_x", "x", c, {{"bad-label", "v"}}), std::invalid_argument);
    CHECK_THROWS_AS(r.add("pf_x", "x", c, {{"__reserved", "v"}}), std::invalid_argument);
    CHECK_THROWS_AS(r.add("pf_x", "x", c, {{"le", "v"}}), std::invalid_argument);
    r.add("pf_x", "x", c, {{"a", "1"}});
    CHECK_THROWS_AS(r.add("pf_x", "x", d, {{"a", "1"}}), std::invalid_argument);  // same labels
    CHECK_THROWS_AS(r.add("pf_x", "x", g), std::invalid_argument);                // other type
    CHECK(valid_metric_name("ns:sub_total"));
    CHECK_FALSE(valid_label_name("ns:sub"));
    CHECK(format_value(0.25) == "0.25");
    CHECK(format_value(1e-6) == "1e-06");
    CHECK(format_value(3) == "3");
}

TEST_CASE("listen address: address literal and port only", "[metrics]") {
    auto a = parse_listen_address("127.0.0.1:9465");
    REQUIRE(a);
    CHECK(a->host == "127.0.0.1");
    CHECK(a->port == 9465);
    CHECK_FALSE(a->v6);
    CHECK(a->is_loopback());
    CHECK(a->to_string() == "127.0.0.1:9465");
    a = parse_listen_address("[::1]:9465");
    REQUIRE(a);
    CHECK(a->v6);
    CHECK(a->is_loopback());
    CHECK(a->to_string() == "[::1]:9465");
    CHECK_FALSE(parse_listen_address("0.0.0.0:9465")->is_loopback());

    std::string why;
    CHECK_FALSE(parse_listen_address("9465", &why));
    CHECK(why == "needs an address and a port (127.0.0.1:9465)");
    CHECK_FALSE(parse_listen_address("localhost:9465", &why));
    CHECK(why == "has no IP address before the port (an address literal: 127.0.0.1:9465)");
    CHECK_FALSE(parse_listen_address(":9465", &why));
    CHECK_FALSE(parse_listen_address("::1:9465", &why));
    CHECK(why == "has an IPv6 address without brackets ([::1]:9465)");
    CHECK_FALSE(parse_listen_address("[127.0.0.1]:9465", &why));
    CHECK_FALSE(parse_listen_address("127.0.0.1:0", &why));
    CHECK(why == "has a bad port (1..65535)");
    CHECK_FALSE(parse_listen_address("127.0.0.1:65536"));
    CHECK_FALSE(parse_listen_address("127.0.0.1:+1"));
    CHECK_FALSE(parse_listen_address("[::1]9465"));
}

TEST_CASE("metrics server: GET /metrics, 404 elsewhere, 405 for other methods, clean stop", "[metrics]") {
    Registry r;
    Counter c;
    r.add("pf_hits_total", "Hits.", c);
    c.inc(3);
    Server s(r, ListenAddress{"127.0.0.1", false, 0});
    REQUIRE(s.port() != 0);
    s.start();

    std::string res = http(s.port(), "GET /metrics HTTP/1.0\r\n\r\n");
    CHECK(res.starts_with("HTTP/1.1 200"));
    CHECK(res.find("Content-Type: text/plain; version=0.0.4; charset=utf-8\r\n") != std::string::npos);
    auto body = res.substr(res.find("\r\n\r\n") + 4);
    CHECK(has_line(body, "pf_hits_total 3"));
    CHECK(body == r.render());

    CHECK(http(s.port(), "GET / HTTP/1.0\r\n\r\n").starts_with("HTTP/1.1 404"));
    CHECK(http(s.port(), "GET /metrics/x HTTP/1.0\r\n\r\n").starts_with("HTTP/1.1 404"));
    CHECK(http(s.port(), "POST /metrics HTTP/1.0\r\nContent-Length: 0\r\n\r\n").starts_with("HTTP/1.1 405"));
    CHECK(http(s.port(), "garbage\r\n\r\n").starts_with("HTTP/1.1 400"));

    // The same port again is busy.
    CHECK_THROWS_WITH((Server(r, ListenAddress{"127.0.0.1", false, s.port()})),
                      Catch::Contains("cannot listen on 127.0.0.1:" + std::to_string(s.port())));

    // A client that connects and says nothing does not hold up stop() for ever: stop() returns
    // (bounded by the server's own timeouts, a few seconds), the server has hung up on that
    // client, and the port is closed.
    int idle = ::socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_port = htons(s.port());
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    REQUIRE(::connect(idle, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0);
    // stop() on a thread of its own, so that a stop() that waits for the client for ever fails
    // this test instead of hanging it: 60 s only catches that, it is not a speed figure.
    std::promise<void> stopped;
    std::future<void> done = stopped.get_future();
    std::thread stopper([&] {
        s.stop();
        stopped.set_value();
    });
    const bool returned = done.wait_for(60s) == std::future_status::ready;
    CHECK(returned);
    if (returned) {
        // The server hung up on the silent client (EOF or a reset, not our 5 s receive timeout)...
        timeval tv{5, 0};
        ::setsockopt(idle, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
        char byte;
        errno = 0;
        const ssize_t n = ::recv(idle, &byte, 1, 0);
        INFO("recv " << n << ", errno " << errno);
        CHECK((n == 0 || (n < 0 && errno == ECONNRESET)));
        // ... and no longer listens.
        CHECK(http(s.port(), "GET /metrics HTTP/1.0\r\n\r\n").empty());
    }
    ::close(idle);  // releases a stop() still waiting for this client
    stopper.join();
    s.stop();  // idempotent
}
