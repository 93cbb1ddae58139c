// Egress reverse DNS (forward-confirmed rDNS of EgressAddresses) over a fake resolver, and the
// monitor that repeats it.
#include <catch2/catch.hpp>

#include <atomic>
#include <chrono>
#include <thread>

#include "egress_rdns.hpp"
#include "egress_rdns_monitor.hpp"
#include "fake_resolver.hpp"

using namespace preflight;
using namespace std::chrono_literals;

namespace {

IpAddress ip(const char* text) { return *parse_ip(text); }

FakeResolver zone() {
    FakeResolver r;
    using S = DnsStatus;
    r.set("1.0.18.198.in-addr.arpa", rrtype::PTR, S::ok, {"mail.example.test"});
    r.set("mail.example.test", rrtype::A, S::ok, {"198.18.0.1"});
    // 198.18.0.2: no PTR (NXDOMAIN: not in the map)
    r.set("3.0.18.198.in-addr.arpa", rrtype::PTR, S::ok, {"other.example.test"});
    r.set("other.example.test", rrtype::A, S::ok, {"198.18.0.99"});
    r.set("4.0.18.198.in-addr.arpa", rrtype::PTR, S::ok);  // NODATA
    r.set("5.0.18.198.in-addr.arpa", rrtype::PTR, S::timeout);
    r.set("6.0.18.198.in-addr.arpa", rrtype::PTR, S::ok, {"two.example.test", "mail6.example.test"});
    r.set("two.example.test", rrtype::A, S::ok, {"198.18.0.7"});
    r.set("mail6.example.test", rrtype::A, S::ok, {"198.18.0.8", "198.18.0.6"});
    r.set("1.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.2.0.0.0.1.0.0.2.ip6.arpa", rrtype::PTR, S::ok,
          {"mail.example.test"});
    r.set("mail.example.test", rrtype::AAAA, S::ok, {"2001:2:0::1"});
    return r;
}

EgressRdns one(FakeResolver& r, const char* address) {
    const std::vector<IpAddress> a{ip(address)};
    auto results = check_egress_rdns(r, a);
    REQUIRE(results.size() == 1);
    return results[0];
}

}  // namespace

TEST_CASE("reverse names", "[egress_rdns]") {
    CHECK(reverse_name(ip("192.0.2.7")) == "7.2.0.192.in-addr.arpa");
    CHECK(reverse_name(ip("2001:db8::1")) ==
          "1.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.8.b.d.0.1.0.0.2.ip6.arpa");
}

TEST_CASE("forward-confirmed reverse DNS of egress addresses", "[egress_rdns]") {
    FakeResolver r = zone();
    SECTION("PTR present and confirmed") {
        EgressRdns e = one(r, "198.18.0.1");
        CHECK(e.result == FcrdnsResult::confirmed);
        CHECK(e.ptr_names == std::vector<std::string>{"mail.example.test"});
        CHECK(describe(e) ==
              "egress 198.18.0.1: forward-confirmed reverse DNS (PTR mail.example.test resolves back to it)");
    }
    SECTION("one of two PTR names confirms") { CHECK(one(r, "198.18.0.6").result == FcrdnsResult::confirmed); }
    SECTION("IPv6, confirmed through AAAA") { CHECK(one(r, "2001:2::1").result == FcrdnsResult::confirmed); }
    SECTION("no PTR: NXDOMAIN and NODATA") {
        EgressRdns nx = one(r, "198.18.0.2");
        CHECK(nx.result == FcrdnsResult::no_ptr);
        CHECK_THAT(describe(nx),
                   Catch::StartsWith("egress 198.18.0.2: no reverse DNS (2.0.18.198.in-addr.arpa does "
                                     "not exist (NXDOMAIN))") &&
                       Catch::Contains("publish a PTR record naming a host whose A record is 198.18.0.2"));
        CHECK(one(r, "198.18.0.4").result == FcrdnsResult::no_ptr);
    }
    SECTION("PTR whose name does not resolve back") {
        EgressRdns e = one(r, "198.18.0.3");
        CHECK(e.result == FcrdnsResult::not_confirmed);
        CHECK_THAT(describe(e), Catch::Contains("(PTR other.example.test -> 198.18.0.99)") &&
                                    Catch::Contains("add 198.18.0.3 to that name's A records"));
    }
    SECTION("DNS trouble is not a verdict") {
        EgressRdns e = one(r, "198.18.0.5");
        CHECK(e.result == FcrdnsResult::dns_error);
        CHECK_THAT(describe(e), Catch::Contains("timeout"));
    }
    SECTION("documentation addresses are not looked up") {
        const int before = r.queries;
        CHECK(one(r, "192.0.2.10").result == FcrdnsResult::not_checked);
        CHECK(one(r, "2001:db8::10").result == FcrdnsResult::not_checked);
        CHECK(r.queries == before);
    }
    SECTION("every address of the pool, in order") {
        const std::vector<IpAddress> pool{ip("198.18.0.1"), ip("198.18.0.2"), ip("198.18.0.3")};
        auto all = check_egress_rdns(r, pool);
        REQUIRE(all.size() == 3);
        CHECK(all[0].result == FcrdnsResult::confirmed);
        CHECK(all[1].result == FcrdnsResult::no_ptr);
        CHECK(all[2].result == FcrdnsResult::not_confirmed);
    }
}

TEST_CASE("the egress rDNS monitor checks at once, then every interval, and exports a gauge", "[egress_rdns]") {
    // A resolver shared with the monitor's thread: the fake's counter under a lock.
    struct Locked : FakeResolver {
        std::mutex m;
        std::shared_ptr<const DnsAnswer> query(std::string_view name, std::uint16_t type) override {
            std::lock_guard lock(m);
            return FakeResolver::query(name, type);
        }
    };
    auto resolver = std::make_shared<Locked>();
    static_cast<FakeResolver&>(*resolver) = zone();
    EgressRdnsMonitor monitor;
    metrics::Registry registry;
    monitor.register_with(registry);
    monitor.configure(resolver, {ip("198.18.0.1"), ip("198.18.0.2")}, 20ms);
    // Bounded (10 s), not a timing assert: three checks must come, however slow the machine.
    for (int i = 0; i < 1000 && monitor.checks_done() < 3; ++i) std::this_thread::sleep_for(10ms);
    CHECK(monitor.checks_done() >= 3);
    const std::string text = registry.render();
    CHECK_THAT(text, Catch::Contains("preflight_egress_fcrdns{address=\"198.18.0.1\",result=\"confirmed\"} 1\n"));
    CHECK_THAT(text, Catch::Contains("preflight_egress_fcrdns{address=\"198.18.0.2\",result=\"no_ptr\"} 0\n"));

    // A reload with another pool: checked at once, the old series gone.
    const unsigned before = monitor.checks_done();
    monitor.configure(resolver, {ip("198.18.0.3")}, 3600s);
    for (int i = 0; i < 1000 && monitor.checks_done() <= before; ++i) std::this_thread::sleep_for(10ms);
    const auto results = monitor.results();
    REQUIRE(results.size() == 1);
    CHECK(results[0].result == FcrdnsResult::not_confirmed);
    CHECK_THAT(registry.render(), !Catch::Contains("198.18.0.1"));
    monitor.stop();
}
