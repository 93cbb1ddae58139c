// LdnsResolver against our own authoritative test server on loopback (testdns.py).
#include <catch2/catch.hpp>

#include "dns_resolver.hpp"
#include "test_dns_server.hpp"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <filesystem>
#include <stdexcept>
#include <thread>
#include <vector>

using namespace preflight;
using preflight::testing::test_dns;
using namespace std::chrono_literals;

namespace {

LdnsResolver make(std::chrono::milliseconds timeout = 300ms) {
    return LdnsResolver({test_dns().nameserver()}, timeout);
}

// Waits (10 s at most, 10 ms steps) until the test server has counted at least want queries
// for (name, type); false if it has not by then.
bool wait_count(const preflight::testing::TestDns& dns, const std::string& name, const std::string& type, int want) {
    for (int i = 0; i < 1000; ++i) {
        if (dns.count(name, type) >= want) return true;
        std::this_thread::sleep_for(10ms);
    }
    return false;
}

}  // namespace

TEST_CASE("nameserver strings parse", "[dns]") {
    auto a = parse_nameserver("192.0.2.53");
    CHECK(a.address == "192.0.2.53");
    CHECK(a.port == 53);
    auto b = parse_nameserver("127.0.0.1:5353");
    CHECK(b.address == "127.0.0.1");
    CHECK(b.port == 5353);
    auto c = parse_nameserver("[::1]:5300");
    CHECK(c.address == "::1");
    CHECK(c.port == 5300);
    auto d = parse_nameserver("2001:db8::53");
    CHECK(d.address == "2001:db8::53");
    CHECK(d.port == 53);
    CHECK(parse_nameserver("[::1]").port == 53);
    CHECK_THROWS_AS(parse_nameserver("ns.example.org"), std::invalid_argument);
    CHECK_THROWS_AS(parse_nameserver("127.0.0.1:"), std::invalid_argument);
    CHECK_THROWS_AS(parse_nameserver("127.0.0.1:70000"), std::invalid_argument);
    CHECK_THROWS_AS(parse_nameserver("[::1"), std::invalid_argument);
    CHECK_THROWS_AS(parse_nameserver("[::1]x"), std::invalid_argument);
    CHECK_THROWS_AS(LdnsResolver({"bogus"}, 300ms), std::invalid_argument);
}

TEST_CASE("system resolver configuration is read once at construction", "[dns]") {
    if (!std::filesystem::exists("/etc/resolv.conf")) return;
    // Only constructed, never asked: /etc/resolv.conf may point off loopback.
    try {
        LdnsResolver sys({}, 1000ms);
        CHECK_FALSE(sys.nameservers().empty());
    } catch (const std::runtime_error&) {
        SUCCEED("no usable nameserver in /etc/resolv.conf");
    }
}

TEST_CASE("positive answers in presentation form", "[dns]") {
    auto r = make();
    SECTION("A") {
        auto a = r.query("a.test", rrtype::A);
        REQUIRE(a->status == DnsStatus::ok);
        CHECK(a->records == std::vector<std::string>{"192.0.2.1"});
        CHECK(a->ttl == 300);
        CHECK_FALSE(a->wire.empty());
        CHECK_FALSE(a->from_cache);
        CHECK(a->elapsed_ms > 0);
    }
    SECTION("AAAA") {
        auto a = r.query("a.test", rrtype::AAAA);
        REQUIRE(a->status == DnsStatus::ok);
        CHECK(a->records == std::vector<std::string>{"2001:db8::1"});
    }
    SECTION("MX lower-cased, no trailing dot") {
        auto a = r.query("a.test", rrtype::MX);
        REQUIRE(a->status == DnsStatus::ok);
        REQUIRE(a->mx.size() == 1);
        CHECK(a->mx[0].preference == 10);
        CHECK(a->mx[0].exchange == "mx.a.test");
        CHECK(a->records == std::vector<std::string>{"10 mx.a.test"});
    }
    SECTION("null MX") {
        auto a = r.query("nullmx.test", rrtype::MX);
        REQUIRE(a->status == DnsStatus::ok);
        REQUIRE(a->mx.size() == 1);
        CHECK(a->mx[0].preference == 0);
        CHECK(a->mx[0].exchange.empty());
    }
    SECTION("TXT strings are concatenated") {
        auto a = r.query("multi.test", rrtype::TXT);
        REQUIRE(a->status == DnsStatus::ok);
        CHECK(a->records == std::vector<std::string>{"part one part two"});
    }
    SECTION("CNAME is followed") {
        auto a = r.query("cname.test", rrtype::A);
        REQUIRE(a->status == DnsStatus::ok);
        CHECK(a->records == std::vector<std::string>{"192.0.2.1"});
    }
    SECTION("case and trailing dot do not matter") {
        auto a = r.query("A.TEST.", rrtype::A);
        REQUIRE(a->status == DnsStatus::ok);
        CHECK(a->records == std::vector<std::string>{"192.0.2.1"});
    }
}

TEST_CASE("negative answers carry the RFC 2308 TTL", "[dns]") {
    auto r = make();
    auto nx = r.query("does-not-exist.test", rrtype::A);
    CHECK(nx->status == DnsStatus::nxdomain);
    CHECK(nx->records.empty());
    CHECK(nx->ttl == 60);  // min(SOA TTL 300, MINIMUM 60)
    CHECK_FALSE(nx->wire.empty());

    auto nodata = r.query("a.test", rrtype::PTR);
    CHECK(nodata->status == DnsStatus::ok);
    CHECK(nodata->records.empty());
    CHECK(nodata->ttl == 60);

    auto short_neg = r.query("x.neg.test", rrtype::A);
    CHECK(short_neg->status == DnsStatus::nxdomain);
    CHECK(short_neg->ttl == 1);

    // A name DNS cannot carry cannot exist.
    auto bad = r.query(std::string(70, 'x') + ".test", rrtype::A);
    CHECK(bad->status == DnsStatus::nxdomain);
    CHECK(bad->ttl == 0);
}

TEST_CASE("DNS trouble maps to statuses", "[dns]") {
    auto r = make(300ms);
    auto& dns = test_dns();
    SECTION("SERVFAIL") {
        // SERVFAIL is a definite answer: that server is not asked again in the second round
        // and the query does not wait for the deadline. A 20 s timeout makes "waited for the
        // deadline" unmistakable; the 10 s bound below only catches that (or a hang), it is
        // not a speed figure.
        LdnsResolver patient({dns.nameserver()}, 20000ms);
        const int before = dns.count("x.servfail.test", "A");
        auto a = patient.query("x.servfail.test", rrtype::A);
        CHECK(a->status == DnsStatus::servfail);
        CHECK(dns.count("x.servfail.test", "A") == before + 1);  // the server counts before it replies
        CHECK(a->elapsed_ms < 10000);
    }
    SECTION("REFUSED (outside the served zones)") {
        CHECK(r.query("example.invalid", rrtype::A)->status == DnsStatus::servfail);
    }
    SECTION("no answer within the timeout") {
        // The outcome (timeout) and that the silent server got its second round within the
        // deadline; the query counts are the server's, which may see the last datagram a
        // little after the resolver gave up: wait for them (10 s at most). The 1 s timeout
        // leaves each attempt 500 ms, so a busy machine does not squeeze out the second round.
        LdnsResolver one_second({dns.nameserver()}, 1000ms);
        const auto t0 = std::chrono::steady_clock::now();
        auto a = one_second.query("rounds.slow.test", rrtype::A);
        const auto ms =
            std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() - t0).count();
        CHECK(a->status == DnsStatus::timeout);
        CHECK(wait_count(dns, "rounds.slow.test", "A", 2));
        CHECK(ms >= 900);   // it waited for the deadline (a lower bound: load only adds to it)
        CHECK(ms < 20000);  // only catches a query that ignores its deadline (hangs)
    }
    SECTION("malformed reply") { CHECK(r.query("garbage.test", rrtype::A)->status == DnsStatus::bad_answer); }
    SECTION("reply with another message ID") {
        CHECK(r.query("wrongid.test", rrtype::A)->status == DnsStatus::bad_answer);
    }
    SECTION("reply to another question") { CHECK(r.query("wrongq.test", rrtype::A)->status == DnsStatus::bad_answer); }
    SECTION("nothing listens") {
        LdnsResolver dead({"127.0.0.1:1"}, 300ms);
        auto a = dead.query("a.test", rrtype::A);
        CHECK(a->status == DnsStatus::timeout);
        CHECK(a->elapsed_ms < 20000);  // only catches a hang: the deadline is 300 ms
    }
}

TEST_CASE("truncated UDP replies are retried over TCP", "[dns]") {
    auto r = make(1000ms);
    auto& dns = test_dns();
    SECTION("server truncates") {
        const int before = dns.count("tc.test", "A");
        auto a = r.query("tc.test", rrtype::A);
        REQUIRE(a->status == DnsStatus::ok);
        CHECK(a->records == std::vector<std::string>{"192.0.2.4"});
        CHECK(dns.count("tc.test", "A") == before + 2);  // UDP, then TCP
    }
    SECTION("EDNS0 carries 1000 octets over UDP, 3000 need TCP") {
        const int big_before = dns.count("big.test", "TXT");
        auto big = r.query("big.test", rrtype::TXT);
        REQUIRE(big->status == DnsStatus::ok);
        CHECK(big->records.at(0) == std::string(1000, 'b'));
        CHECK(dns.count("big.test", "TXT") == big_before + 1);

        const int huge_before = dns.count("huge.test", "TXT");
        auto huge = r.query("huge.test", rrtype::TXT);
        REQUIRE(huge->status == DnsStatus::ok);
        CHECK(huge->records.at(0) == std::string(3000, 'h'));
        CHECK(dns.count("huge.test", "TXT") == huge_before + 2);
    }
}

TEST_CASE("the next nameserver is asked when one is dead", "[dns]") {
    LdnsResolver r({"127.0.0.1:1", test_dns().nameserver()}, 1000ms);
    const int before = test_dns().count("a.test", "A");
    auto a = r.query("a.test", rrtype::A);
    REQUIRE(a->status == DnsStatus::ok);
    CHECK(a->records == std::vector<std::string>{"192.0.2.1"});
    CHECK(test_dns().count("a.test", "A") == before + 1);  // the answer came from the second server
}

TEST_CASE("one resolver serves many threads", "[dns]") {
    auto r = make(2000ms);
    std::atomic<int> ok{0};
    std::vector<std::thread> threads;
    for (int t = 0; t < 8; ++t)
        threads.emplace_back([&] {
            for (int i = 0; i < 10; ++i)
                if (r.query("a.test", rrtype::A)->status == DnsStatus::ok) ++ok;
        });
    for (auto& t : threads) t.join();
    CHECK(ok == 80);
}

TEST_CASE("DnsStatus names", "[dns]") {
    CHECK(to_string(DnsStatus::ok) == "ok");
    CHECK(to_string(DnsStatus::nxdomain) == "nxdomain");
    CHECK(to_string(DnsStatus::servfail) == "servfail");
    CHECK(to_string(DnsStatus::timeout) == "timeout");
    CHECK(to_string(DnsStatus::bad_answer) == "bad_answer");
}

TEST_CASE("a server slower than one attempt is heard while the resolver retransmits", "[dns]") {
    // delay.test answers after 300 ms. Four entries of the same server with a 2 s deadline
    // give attempts 250 ms apart: the first answer comes after the second attempt was sent.
    // A resolver that dropped an attempt's answer once it retransmitted never heard one
    // (every answer came 300 ms after its attempt, each attempt waited 250 ms): timeout.
    auto& dns = test_dns();
    const std::string ns = dns.nameserver();
    LdnsResolver r({ns, ns, ns, ns}, 2000ms);
    const int before = dns.count("retransmit.delay.test", "A");
    auto a = r.query("retransmit.delay.test", rrtype::A);
    CHECK(a->status == DnsStatus::nxdomain);  // answered (the name is not in the zone), not timeout
    CHECK(dns.count("retransmit.delay.test", "A") >= before + 2);  // it was retransmitted first
    auto b = r.query("delay.test", rrtype::A);
    REQUIRE(b->status == DnsStatus::ok);
    CHECK(b->records == std::vector<std::string>{"192.0.2.3"});
}

namespace {

// A UDP server on loopback that answers nothing until it has received `want` queries, then
// answers each (A 192.0.2.99, TTL 60). A resolver that waits for one answer before it sends
// the next query never gets one. Every wait is bounded (10 s).
class GatheringServer {
public:
    explicit GatheringServer(std::size_t want) : want_(want) {
        fd_ = ::socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
        sockaddr_in sa{};
        sa.sin_family = AF_INET;
        sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        socklen_t len = sizeof sa;
        if (fd_ < 0 || ::bind(fd_, reinterpret_cast<sockaddr*>(&sa), len) != 0 ||
            ::getsockname(fd_, reinterpret_cast<sockaddr*>(&sa), &len) != 0)
            throw std::runtime_error("gathering server: no socket");
        port_ = ntohs(sa.sin_port);
        thread_ = std::thread([this] { run(); });
    }
    ~GatheringServer() {
        thread_.join();
        ::close(fd_);
    }
    std::string nameserver() const { return "127.0.0.1:" + std::to_string(port_); }
    std::size_t received() const { return received_; }

private:
    struct Query {
        std::vector<std::uint8_t> wire;
        sockaddr_storage from{};
        socklen_t from_len = sizeof(sockaddr_storage);
    };

    void run() {
        std::vector<Query> queries;
        const auto deadline = std::chrono::steady_clock::now() + 10s;
        while (queries.size() < want_ && std::chrono::steady_clock::now() < deadline) {
            pollfd p{fd_, POLLIN, 0};
            if (::poll(&p, 1, 100) <= 0) continue;
            Query q;
            q.wire.resize(512);
            const ssize_t n =
                ::recvfrom(fd_, q.wire.data(), q.wire.size(), 0, reinterpret_cast<sockaddr*>(&q.from), &q.from_len);
            if (n < 12) continue;
            q.wire.resize(static_cast<std::size_t>(n));
            queries.push_back(std::move(q));
            received_ = queries.size();
        }
        if (queries.size() < want_) return;
        for (const Query& q : queries) {
            const std::vector<std::uint8_t> reply = answer(q.wire);
            ::sendto(fd_, reply.data(), reply.size(), 0, reinterpret_cast<const sockaddr*>(&q.from), q.from_len);
        }
    }

    // The query's header and question, QR and AA set, one A record pointing at the question.
    static std::vector<std::uint8_t> answer(const std::vector<std::uint8_t>& query) {
        std::size_t end = 12;
        while (end < query.size() && query[end] != 0) end += query[end] + 1u;
        end += 5;  // the root label, QTYPE, QCLASS
        std::vector<std::uint8_t> r(query.begin(), query.begin() + static_cast<std::ptrdiff_t>(end));
        r[2] = 0x85;  // QR, AA, RD
        r[3] = 0x00;
        r[6] = 0, r[7] = 1;               // ANCOUNT 1
        r[8] = r[9] = r[10] = r[11] = 0;  // no authority, no additional (drops the OPT)
        const std::uint8_t rr[] = {0xc0, 0x0c, 0, 1, 0, 1, 0, 0, 0, 60, 0, 4, 192, 0, 2, 99};
        r.insert(r.end(), std::begin(rr), std::end(rr));
        return r;
    }

    std::size_t want_;
    int fd_ = -1;
    std::uint16_t port_ = 0;
    std::atomic<std::size_t> received_{0};
    std::thread thread_;
};

}  // namespace

TEST_CASE("query_all sends every question before it waits for an answer", "[dns]") {
    GatheringServer server(2);
    LdnsResolver r({server.nameserver()}, 5000ms);
    const std::vector<DnsQuestion> questions{{"one.example", rrtype::A}, {"two.example", rrtype::A}};
    auto answers = r.query_all(questions);
    REQUIRE(answers.size() == 2);
    for (const auto& a : answers) {
        CHECK(a->status == DnsStatus::ok);
        CHECK(a->records == std::vector<std::string>{"192.0.2.99"});
    }
    CHECK(server.received() == 2);
}

TEST_CASE("query_all answers each question in its place", "[dns]") {
    auto r = make(1000ms);
    const std::vector<DnsQuestion> questions{
        {"a.test", rrtype::MX}, {"does-not-exist.test", rrtype::A}, {"multi.test", rrtype::TXT}, {"", rrtype::A}};
    auto answers = r.query_all(questions);
    REQUIRE(answers.size() == 4);
    CHECK(answers[0]->records == std::vector<std::string>{"10 mx.a.test"});
    CHECK(answers[1]->status == DnsStatus::nxdomain);
    CHECK(answers[2]->records == std::vector<std::string>{"part one part two"});
    CHECK(answers[3]->status == DnsStatus::nxdomain);
}
