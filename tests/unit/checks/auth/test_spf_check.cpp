// SPF through libspf2 with its DNS layer on our resolver, against the test server's zone.
#include <catch2/catch.hpp>

#include "dns_cache.hpp"
#include "dns_resolver.hpp"
#include "spf_check.hpp"
#include "test_dns_server.hpp"

#include <atomic>
#include <thread>

using namespace preflight;
using preflight::testing::test_dns;
using namespace std::chrono_literals;

namespace {

struct Dns {
    LdnsResolver net{{test_dns().nameserver()}, 1000ms};
    CachingResolver cache{net, 1000};
};

SpfResult spf(Resolver& r, const char* domain, const char* ip) {
    return check_spf(r, domain, std::string("user@") + domain, ip, "client.example").result;
}

}  // namespace

TEST_CASE("SPF results", "[spf]") {
    Dns d;
    auto& r = d.cache;
    CHECK(spf(r, "spf-pass.test", "192.0.2.10") == SpfResult::pass);
    CHECK(spf(r, "spf-pass.test", "2001:db8::10") == SpfResult::pass);
    CHECK(spf(r, "spf-pass.test", "192.0.2.99") == SpfResult::fail);
    CHECK(spf(r, "spf-softfail.test", "192.0.2.99") == SpfResult::softfail);
    CHECK(spf(r, "spf-neutral.test", "192.0.2.99") == SpfResult::neutral);
    CHECK(spf(r, "spf-bare.test", "192.0.2.99") == SpfResult::neutral);
    CHECK(spf(r, "spf-none.test", "192.0.2.10") == SpfResult::none);
    CHECK(spf(r, "no-such-domain.test", "192.0.2.10") == SpfResult::none);
    CHECK(spf(r, "spf-mx.test", "192.0.2.30") == SpfResult::pass);
    CHECK(spf(r, "spf-mx.test", "192.0.2.31") == SpfResult::fail);
    CHECK(spf(r, "spf-a.test", "192.0.2.31") == SpfResult::pass);
    CHECK(spf(r, "spf-include.test", "192.0.2.10") == SpfResult::pass);
    CHECK(spf(r, "spf-include.test", "192.0.2.11") == SpfResult::fail);
    CHECK(spf(r, "spf-nullmx.test", "192.0.2.10") == SpfResult::fail);
    CHECK(spf(r, "SPF-PASS.TEST.", "192.0.2.10") == SpfResult::pass);
}

TEST_CASE("SPF explanations say what happened", "[spf]") {
    Dns d;
    auto pass = check_spf(d.cache, "spf-pass.test", "", "192.0.2.10", "");
    CHECK(pass.explanation == "the SPF record of spf-pass.test allows 192.0.2.10");
    auto fail = check_spf(d.cache, "spf-pass.test", "", "192.0.2.99", "");
    CHECK(fail.explanation == "the SPF record of spf-pass.test does not allow 192.0.2.99");
    auto none = check_spf(d.cache, "spf-none.test", "", "192.0.2.99", "");
    CHECK(none.explanation == "spf-none.test publishes no SPF record");
}

TEST_CASE("loopback clients get no free pass", "[spf]") {
    Dns d;
    // libspf2's own entry points pass 127.0.0.0/8 unconditionally; ours evaluate the record.
    CHECK(spf(d.cache, "spf-pass.test", "127.0.0.1") == SpfResult::fail);
    CHECK(spf(d.cache, "spf-pass.test", "::1") == SpfResult::fail);
}

TEST_CASE("SPF permanent errors", "[spf]") {
    Dns d;
    auto& r = d.cache;
    SECTION("include loop ends, does not hang") {
        auto o = check_spf(r, "spf-loop1.test", "", "192.0.2.10", "");
        CHECK(o.result == SpfResult::permerror);
        INFO(o.explanation);
    }
    SECTION("more than 10 DNS-querying terms") {
        auto o = check_spf(r, "spf-many.test", "", "192.0.2.10", "");
        CHECK(o.result == SpfResult::permerror);
        CHECK_THAT(o.explanation, Catch::Contains("more than 10"));
    }
    SECTION("exactly 10 terms are fine") { CHECK(spf(r, "spf-ten.test", "192.0.2.10") == SpfResult::pass); }
    SECTION("the limit holds across includes") {
        auto o = check_spf(r, "spf-deep.test", "", "192.0.2.10", "");
        CHECK(o.result == SpfResult::permerror);
        CHECK_THAT(o.explanation, Catch::Contains("more than 10"));
    }
    SECTION("more than 2 void lookups") {
        auto o = check_spf(r, "spf-void.test", "", "192.0.2.10", "");
        CHECK(o.result == SpfResult::permerror);
        CHECK_THAT(o.explanation, Catch::Contains("void"));
        CHECK(spf(r, "spf-void2.test", "192.0.2.10") == SpfResult::pass);
    }
    SECTION("syntax error") {
        auto o = check_spf(r, "spf-syntax.test", "", "192.0.2.10", "");
        CHECK(o.result == SpfResult::permerror);
        INFO(o.explanation);
    }
    SECTION("two SPF records") { CHECK(spf(r, "spf-multi.test", "192.0.2.10") == SpfResult::permerror); }
    SECTION("include of a domain without SPF") {
        CHECK(spf(r, "spf-incnone.test", "192.0.2.10") == SpfResult::permerror);
    }
    SECTION("client address that is not an address") {
        CHECK(spf(r, "spf-pass.test", "not-an-ip") == SpfResult::permerror);
    }
}

TEST_CASE("SPF temporary errors", "[spf]") {
    Dns d;
    auto direct = check_spf(d.cache, "servfail.test", "", "192.0.2.10", "");
    CHECK(direct.result == SpfResult::temperror);
    CHECK_THAT(direct.explanation, Catch::Contains("servfail"));
    CHECK(spf(d.cache, "spf-temp.test", "192.0.2.10") == SpfResult::temperror);
    LdnsResolver slow({test_dns().nameserver()}, 300ms);
    CHECK(spf(slow, "slow.test", "192.0.2.10") == SpfResult::temperror);
}

TEST_CASE("SPF for every egress address", "[spf]") {
    Dns d;
    auto all = check_spf_for_egress(d.cache, "spf-pass.test", "user@spf-pass.test", {"192.0.2.10", "2001:db8::10"});
    CHECK(all.result == SpfResult::pass);
    CHECK(all.unauthorized.empty());
    CHECK(all.explanation == "the SPF record of spf-pass.test allows 192.0.2.10, 2001:db8::10");
    // Every address is evaluated, so that each one the record leaves out is named.
    auto two_bad = check_spf_for_egress(d.cache, "spf-pass.test", "user@spf-pass.test",
                                        {"192.0.2.10", "192.0.2.11", "192.0.2.12"});
    CHECK(two_bad.result == SpfResult::fail);
    CHECK(two_bad.unauthorized == std::vector<std::string>{"192.0.2.11", "192.0.2.12"});
    CHECK(two_bad.explanation ==
          "the SPF record of spf-pass.test does not allow 192.0.2.11; "
          "the SPF record of spf-pass.test does not allow 192.0.2.12");
    auto none = check_spf_for_egress(d.cache, "spf-none.test", "", {"192.0.2.10", "2001:db8::10"});
    CHECK(none.result == SpfResult::none);
    CHECK(none.explanation == "spf-none.test publishes no SPF record");  // once, not per address
    CHECK(none.unauthorized == std::vector<std::string>{"192.0.2.10", "2001:db8::10"});
    CHECK(check_spf_for_egress(d.cache, "spf-pass.test", "", {}).result == SpfResult::none);
}

TEST_CASE("SpfEgressMatch over a dual-stack pool where the record authorizes one of two", "[spf]") {
    Dns d;
    const std::vector<std::string> pool{"192.0.2.7", "2001:db8::7"};
    SECTION("all: the IPv6 address is not authorized, and named") {
        auto o = check_spf_for_egress(d.cache, "spf-pool4.test", "", pool, SpfEgressMatch::all);
        CHECK(o.result == SpfResult::fail);
        CHECK(o.unauthorized == std::vector<std::string>{"2001:db8::7"});
        CHECK(o.explanation == "the SPF record of spf-pool4.test does not allow 2001:db8::7");
    }
    SECTION("all: the IPv4 address is not authorized (~all: softfail), and named") {
        auto o = check_spf_for_egress(d.cache, "spf-pool6.test", "", pool, SpfEgressMatch::all);
        CHECK(o.result == SpfResult::softfail);
        CHECK(o.unauthorized == std::vector<std::string>{"192.0.2.7"});
    }
    SECTION("any: one authorized address is enough, whichever it is") {
        for (const char* domain : {"spf-pool4.test", "spf-pool6.test"}) {
            INFO(domain);
            auto o = check_spf_for_egress(d.cache, domain, "", pool, SpfEgressMatch::any);
            CHECK(o.result == SpfResult::pass);
            CHECK(o.unauthorized.empty());
        }
        CHECK(check_spf_for_egress(d.cache, "spf-pool6.test", "", pool, SpfEgressMatch::any).explanation ==
              "the SPF record of spf-pool6.test allows 2001:db8::7");
    }
    SECTION("a record authorizing both passes either way") {
        CHECK(check_spf_for_egress(d.cache, "spf-poolboth.test", "", pool, SpfEgressMatch::all).result ==
              SpfResult::pass);
        CHECK(check_spf_for_egress(d.cache, "spf-poolboth.test", "", pool, SpfEgressMatch::any).result ==
              SpfResult::pass);
    }
    SECTION("any: nothing authorized names every address") {
        auto o = check_spf_for_egress(d.cache, "spf-pass.test", "", pool, SpfEgressMatch::any);
        CHECK(o.result == SpfResult::fail);
        CHECK(o.unauthorized == pool);
    }
    SECTION("DNS trouble for the address that is not authorized elsewhere: temperror") {
        // 192.0.2.7 passes before the include; 2001:db8::7 reaches the SERVFAIL include.
        CHECK(check_spf_for_egress(d.cache, "spf-pooltemp.test", "", pool, SpfEgressMatch::all).result ==
              SpfResult::temperror);
        CHECK(check_spf_for_egress(d.cache, "spf-pooltemp.test", "", pool, SpfEgressMatch::any).result ==
              SpfResult::pass);
    }
}

TEST_CASE("combine_egress_spf: the decision over per-address outcomes", "[spf]") {
    using R = SpfResult;
    auto at = [](const char* ip, R r) { return EgressSpf{ip, {r, std::string("why ") + ip}}; };
    auto all = [](std::vector<EgressSpf> v) { return combine_egress_spf("Example.COM.", v, SpfEgressMatch::all); };
    auto any = [](std::vector<EgressSpf> v) { return combine_egress_spf("example.com", v, SpfEgressMatch::any); };

    CHECK(all({at("192.0.2.7", R::pass), at("2001:db8::7", R::pass)}).result == R::pass);
    CHECK(all({at("192.0.2.7", R::pass), at("2001:db8::7", R::pass)}).explanation ==
          "the SPF record of example.com allows 192.0.2.7, 2001:db8::7");
    // all: a definite failure settles it, even beside DNS trouble; the first failure's result.
    SpfOutcome o = all({at("192.0.2.7", R::temperror), at("192.0.2.8", R::softfail), at("2001:db8::7", R::fail)});
    CHECK(o.result == R::softfail);
    CHECK(o.unauthorized == std::vector<std::string>{"192.0.2.8", "2001:db8::7"});
    CHECK(o.explanation == "why 192.0.2.8; why 2001:db8::7");
    o = all({at("192.0.2.7", R::pass), at("2001:db8::7", R::temperror)});
    CHECK(o.result == R::temperror);
    CHECK(o.explanation == "for egress address 2001:db8::7: why 2001:db8::7");
    CHECK(o.unauthorized.empty());
    o = all({at("192.0.2.7", R::permerror), at("2001:db8::7", R::pass)});
    CHECK(o.result == R::permerror);
    CHECK(o.unauthorized == std::vector<std::string>{"192.0.2.7"});
    // any: one pass is enough; DNS trouble beats a failure (a retry may pass).
    CHECK(any({at("192.0.2.7", R::fail), at("2001:db8::7", R::pass)}).result == R::pass);
    CHECK(any({at("192.0.2.7", R::fail), at("2001:db8::7", R::pass)}).explanation ==
          "the SPF record of example.com allows 2001:db8::7");
    CHECK(any({at("192.0.2.7", R::fail), at("2001:db8::7", R::temperror)}).result == R::temperror);
    o = any({at("192.0.2.7", R::neutral), at("2001:db8::7", R::fail)});
    CHECK(o.result == R::neutral);
    CHECK(o.unauthorized == std::vector<std::string>{"192.0.2.7", "2001:db8::7"});
    // Nothing evaluated.
    CHECK(all({}).result == R::none);
    CHECK(any({}).explanation == "no egress addresses configured");
}

TEST_CASE("SPF lookups go through the cache", "[spf]") {
    Dns d;
    auto& dns = test_dns();
    REQUIRE(spf(d.cache, "spf-mx.test", "192.0.2.30") == SpfResult::pass);
    const int txt = dns.count("spf-mx.test", "TXT"), mx = dns.count("spf-mx.test", "MX"),
              a = dns.count("mx.spf-mx.test", "A");
    const auto upstream = d.cache.stats().upstream_queries;
    CHECK(spf(d.cache, "spf-mx.test", "192.0.2.30") == SpfResult::pass);
    CHECK(dns.count("spf-mx.test", "TXT") == txt);
    CHECK(dns.count("spf-mx.test", "MX") == mx);
    CHECK(dns.count("mx.spf-mx.test", "A") == a);
    CHECK(d.cache.stats().upstream_queries == upstream);
    CHECK(dns.count("spf-mx.test", "SPF") == 0);  // libspf2's type-99 lookups never leave us
}

TEST_CASE("SPF checks run in parallel", "[spf]") {
    Dns d;
    std::atomic<int> right{0};
    std::vector<std::thread> threads;
    for (int t = 0; t < 6; ++t)
        threads.emplace_back([&, t] {
            for (int i = 0; i < 20; ++i) {
                const bool pass = (i + t) % 2 == 0;
                auto r = spf(d.cache, "spf-include.test", pass ? "192.0.2.10" : "192.0.2.77");
                if (r == (pass ? SpfResult::pass : SpfResult::fail)) ++right;
            }
        });
    for (auto& t : threads) t.join();
    CHECK(right == 120);
}

TEST_CASE("SPF result names", "[spf]") {
    CHECK(to_string(SpfResult::pass) == "pass");
    CHECK(to_string(SpfResult::softfail) == "softfail");
    CHECK(to_string(SpfResult::temperror) == "temperror");
    CHECK(to_string(SpfResult::permerror) == "permerror");
    CHECK(to_string(SpfResult::none) == "none");
    CHECK(to_string(SpfResult::neutral) == "neutral");
    CHECK(to_string(SpfResult::fail) == "fail");
}
