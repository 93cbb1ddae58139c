// LdnsResolver against our own authoritative test server on loopback (testdns.py).
#include <catch2/catch.hpp>

#include "dns_resolver.hpp"
#include "test_dns_server.hpp"

#include <atomic>
#include <chrono>
#include <filesystem>
#include <thread>

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
