// CachingResolver: with a fake upstream for the rules, and in front of LdnsResolver against
// the counting test server to prove that cached answers cause no DNS traffic.
#include <catch2/catch.hpp>

#include "dns_cache.hpp"
#include "dns_resolver.hpp"
#include "test_dns_server.hpp"

#include <atomic>
#include <condition_variable>
#include <mutex>
#include <thread>

using namespace preflight;
using preflight::testing::test_dns;
using namespace std::chrono_literals;

namespace {

// Counts calls; answers with a fixed status and TTL.
class FakeUpstream : public Resolver {
public:
    DnsStatus status = DnsStatus::ok;
    std::uint32_t ttl = 300;
    bool throws = false;
    std::atomic<int> calls{0};

    std::shared_ptr<const DnsAnswer> query(std::string_view name, std::uint16_t) override {
        ++calls;
        if (throws) throw std::runtime_error("boom");
        auto a = std::make_shared<DnsAnswer>();
        a->status = status;
        a->ttl = ttl;
        if (status == DnsStatus::ok) a->records.push_back(std::string(name));
        a->elapsed_ms = 1.5;
        return a;
    }
};

}  // namespace

TEST_CASE("cache rules with a fake upstream", "[dns]") {
    FakeUpstream up;
    CachingResolver cache(up, 100);

    SECTION("second query is a hit; key ignores case and trailing dot") {
        auto a = cache.query("Example.ORG.", rrtype::A);
        CHECK_FALSE(a->from_cache);
        CHECK(a->records == std::vector<std::string>{"example.org"});  // asked normalised
        auto b = cache.query("example.org", rrtype::A);
        CHECK(b->from_cache);
        CHECK(b->elapsed_ms == 0);
        CHECK(up.calls == 1);
        cache.query("example.org", rrtype::MX);  // another type is another key
        CHECK(up.calls == 2);
        auto s = cache.stats();
        CHECK(s.queries == 3);
        CHECK(s.hits == 1);
        CHECK(s.misses == 2);
        CHECK(s.upstream_queries == 2);
        CHECK(s.entries == 2);
    }
    SECTION("TTL 0 is not cached") {
        up.ttl = 0;
        cache.query("a.example", rrtype::A);
        cache.query("a.example", rrtype::A);
        CHECK(up.calls == 2);
    }
    SECTION("failures are cached for failure_ttl only") {
        up.status = DnsStatus::servfail;
        // 1 s: the second query must come within failure_ttl of the first to be a hit, and
        // 100 ms was a window a busy machine could miss. The sleep is longer than the TTL, so
        // the expiry check does not depend on the machine's speed.
        CachingResolver brief(up, 100, DnsCacheOptions{std::chrono::milliseconds(1000), 30s});
        CHECK(brief.query("f.example", rrtype::A)->status == DnsStatus::servfail);
        CHECK(brief.query("f.example", rrtype::A)->from_cache);
        CHECK(up.calls == 1);
        std::this_thread::sleep_for(1100ms);
        brief.query("f.example", rrtype::A);
        CHECK(up.calls == 2);

        CachingResolver never(up, 100, DnsCacheOptions{std::chrono::milliseconds(0), 30s});
        never.query("g.example", rrtype::A);
        never.query("g.example", rrtype::A);
        CHECK(up.calls == 4);
    }
    SECTION("an upstream exception becomes bad_answer") {
        up.throws = true;
        CHECK(cache.query("x.example", rrtype::A)->status == DnsStatus::bad_answer);
    }
    SECTION("LRU eviction keeps at most max_entries") {
        CachingResolver small(up, 3);
        for (const char* n : {"e1", "e2", "e3"}) small.query(n, rrtype::A);
        small.query("e1", rrtype::A);  // e1 is now the most recent; e2 the coldest
        small.query("e4", rrtype::A);  // evicts e2
        small.query("e5", rrtype::A);  // evicts e3
        auto s = small.stats();
        CHECK(s.entries == 3);
        CHECK(s.evictions == 2);
        const int calls = up.calls;
        CHECK(small.query("e1", rrtype::A)->from_cache);
        CHECK(small.query("e5", rrtype::A)->from_cache);
        CHECK(up.calls == calls);
        CHECK_FALSE(small.query("e2", rrtype::A)->from_cache);
        CHECK(up.calls == calls + 1);
    }
    SECTION("max_entries 0 disables caching") {
        CachingResolver none(up, 0);
        none.query("z.example", rrtype::A);
        none.query("z.example", rrtype::A);
        CHECK(up.calls == 2);
    }
    SECTION("clear drops everything") {
        cache.query("c.example", rrtype::A);
        cache.clear();
        CHECK(cache.stats().entries == 0);
        CHECK_FALSE(cache.query("c.example", rrtype::A)->from_cache);
    }
}

TEST_CASE("second identical query causes no DNS traffic", "[dns]") {
    auto& dns = test_dns();
    CachingResolver cache(std::make_unique<LdnsResolver>(std::vector{dns.nameserver()}, 1000ms), 1000);
    const int before = dns.count("a.test", "MX");
    auto first = cache.query("a.test", rrtype::MX);
    REQUIRE(first->status == DnsStatus::ok);
    CHECK_FALSE(first->from_cache);
    CHECK(dns.count("a.test", "MX") == before + 1);
    auto second = cache.query("A.test.", rrtype::MX);
    CHECK(second->from_cache);
    CHECK(second->mx.at(0).exchange == "mx.a.test");
    CHECK(second->wire == first->wire);
    CHECK(dns.count("a.test", "MX") == before + 1);
}

TEST_CASE("negative answers are cached", "[dns]") {
    auto& dns = test_dns();
    CachingResolver cache(std::make_unique<LdnsResolver>(std::vector{dns.nameserver()}, 1000ms), 1000);
    SECTION("NXDOMAIN") {
        const int before = dns.count("cached-nx.test", "A");
        CHECK(cache.query("cached-nx.test", rrtype::A)->status == DnsStatus::nxdomain);
        auto again = cache.query("cached-nx.test", rrtype::A);
        CHECK(again->status == DnsStatus::nxdomain);
        CHECK(again->from_cache);
        CHECK(dns.count("cached-nx.test", "A") == before + 1);
    }
    SECTION("NODATA") {
        const int before = dns.count("a.test", "SOA");
        auto a = cache.query("a.test", rrtype::SOA);
        CHECK(a->status == DnsStatus::ok);
        CHECK(a->records.empty());
        CHECK(cache.query("a.test", rrtype::SOA)->from_cache);
        CHECK(dns.count("a.test", "SOA") == before + 1);
    }
    SECTION("SERVFAIL briefly") {
        const int before = dns.count("x.servfail.test", "A");
        cache.query("x.servfail.test", rrtype::A);
        CHECK(cache.query("x.servfail.test", rrtype::A)->status == DnsStatus::servfail);
        CHECK(dns.count("x.servfail.test", "A") == before + 1);
    }
}

TEST_CASE("entries expire with their TTL", "[dns]") {
    auto& dns = test_dns();
    CachingResolver cache(std::make_unique<LdnsResolver>(std::vector{dns.nameserver()}, 1000ms), 1000);
    SECTION("positive, TTL 1") {
        const int before = dns.count("short.test", "A");
        REQUIRE(cache.query("short.test", rrtype::A)->ttl == 1);
        CHECK(cache.query("short.test", rrtype::A)->from_cache);
        CHECK(dns.count("short.test", "A") == before + 1);
        std::this_thread::sleep_for(1100ms);
        CHECK_FALSE(cache.query("short.test", rrtype::A)->from_cache);
        CHECK(dns.count("short.test", "A") == before + 2);
    }
    SECTION("negative, SOA MINIMUM 1") {
        const int before = dns.count("gone.neg.test", "A");
        REQUIRE(cache.query("gone.neg.test", rrtype::A)->ttl == 1);
        CHECK(cache.query("gone.neg.test", rrtype::A)->from_cache);
        std::this_thread::sleep_for(1100ms);
        CHECK_FALSE(cache.query("gone.neg.test", rrtype::A)->from_cache);
        CHECK(dns.count("gone.neg.test", "A") == before + 2);
    }
}

TEST_CASE("identical queries in flight are coalesced", "[dns]") {
    auto& dns = test_dns();
    CachingResolver cache(std::make_unique<LdnsResolver>(std::vector{dns.nameserver()}, 2000ms), 1000);
    const int before = dns.count("delay.test", "A");
    constexpr int kThreads = 8;

    // All threads are released at once; delay.test answers after 300 ms.
    std::mutex m;
    std::condition_variable cv;
    bool go = false;
    int ready = 0;
    std::atomic<int> ok{0};
    std::vector<std::thread> threads;
    for (int i = 0; i < kThreads; ++i)
        threads.emplace_back([&] {
            {
                std::unique_lock lock(m);
                ++ready;
                cv.notify_all();
                cv.wait_for(lock, 5s, [&] { return go; });
            }
            auto a = cache.query("delay.test", rrtype::A);
            if (a->status == DnsStatus::ok && a->records == std::vector<std::string>{"192.0.2.3"}) ++ok;
        });
    {
        std::unique_lock lock(m);
        cv.wait_for(lock, 5s, [&] { return ready == kThreads; });
        go = true;
    }
    cv.notify_all();
    for (auto& t : threads) t.join();

    CHECK(ok == kThreads);
    CHECK(dns.count("delay.test", "A") == before + 1);
    auto s = cache.stats();
    CHECK(s.upstream_queries == 1);
    CHECK(s.misses == 1);
    CHECK(s.coalesced + s.hits == kThreads - 1);
    CHECK(s.coalesced >= 1);
}

TEST_CASE("eviction bound against the server", "[dns]") {
    auto& dns = test_dns();
    CachingResolver cache(std::make_unique<LdnsResolver>(std::vector{dns.nameserver()}, 1000ms), 2);
    for (const char* n : {"ev1.test", "ev2.test", "ev3.test"}) cache.query(n, rrtype::A);
    CHECK(cache.stats().entries == 2);
    const int before = dns.count("ev1.test", "A");
    CHECK_FALSE(cache.query("ev1.test", rrtype::A)->from_cache);  // evicted: asked again
    CHECK(dns.count("ev1.test", "A") == before + 1);
}

namespace {

// Records every batch it is given, answering each question as FakeUpstream does.
class BatchUpstream : public FakeUpstream {
public:
    std::vector<std::vector<std::string>> batches;

    std::vector<std::shared_ptr<const DnsAnswer>> query_all(std::span<const DnsQuestion> questions) override {
        std::vector<std::string> names;
        std::vector<std::shared_ptr<const DnsAnswer>> out;
        for (const DnsQuestion& q : questions) {
            names.push_back(q.name + "/" + std::to_string(q.type));
            out.push_back(query(q.name, q.type));
        }
        batches.push_back(std::move(names));
        return out;
    }
};

}  // namespace

TEST_CASE("query_all through the cache: hits stay home, the rest goes upstream in one batch", "[dns]") {
    BatchUpstream up;
    CachingResolver cache(up, 100);
    cache.query("cached.example", rrtype::MX);
    up.batches.clear();

    const std::vector<DnsQuestion> questions{{"cached.example", rrtype::MX},
                                             {"New.Example.", rrtype::TXT},
                                             {"new.example", rrtype::MX},
                                             {"new.example", rrtype::TXT}};  // the same as the second
    auto answers = cache.query_all(questions);
    REQUIRE(answers.size() == 4);
    CHECK(answers[0]->from_cache);
    CHECK(answers[0]->records == std::vector<std::string>{"cached.example"});
    CHECK_FALSE(answers[1]->from_cache);
    CHECK(answers[2]->records == std::vector<std::string>{"new.example"});
    CHECK(answers[3]->records == std::vector<std::string>{"new.example"});
    REQUIRE(up.batches.size() == 1);
    CHECK(up.batches[0] == std::vector<std::string>{"new.example/16", "new.example/15"});
    CHECK(cache.query("new.example", rrtype::TXT)->from_cache);

    SECTION("an upstream that throws gives bad_answer, not an exception") {
        up.throws = true;
        const std::vector<DnsQuestion> more{{"boom.example", rrtype::A}};
        CHECK(cache.query_all(more).at(0)->status == DnsStatus::bad_answer);
    }
}
