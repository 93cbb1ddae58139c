// DKIM through libopendkim with its DNS hooks on our resolver. Messages are signed here with
// keys generated at test time (see test_dns_server.cpp) whose public halves the test server
// publishes.
#include <catch2/catch.hpp>

#include "dkim_check.hpp"
#include "dns_cache.hpp"
#include "dns_resolver.hpp"
#include "test_dns_server.hpp"

#define _Bool bool
#include <dkim.h>
#undef _Bool

#include <atomic>
#include <cstring>
#include <map>
#include <thread>

using namespace preflight;
using preflight::testing::test_dns;
using preflight::testing::TestKey;
using namespace std::chrono_literals;

namespace {

using Headers = std::vector<std::pair<std::string, std::string>>;

struct LibClose {
    void operator()(DKIM_LIB* l) const { dkim_close(l); }
};
struct DkimFree {
    void operator()(DKIM* d) const { dkim_free(d); }
};

const Headers kHeaders = {
    {"From", "Alice <alice@dkim.test>"},        {"To", "bob@example.org"},
    {"Subject", "quarterly\r\n numbers"},  // folded
    {"Date", "Mon, 1 Jan 2024 10:00:00 +0000"}, {"Message-ID", "<1@dkim.test>"},
};
const std::string kBody = "Hello Bob,\r\n\r\nthe numbers are attached.\r\n";

// The value of a DKIM-Signature header for the message (relaxed/relaxed, rsa-sha256).
std::string sign(const Headers& headers, const std::string& body, const TestKey& key, const char* selector,
                 const char* domain) {
    std::unique_ptr<DKIM_LIB, LibClose> lib(dkim_init(nullptr, nullptr));
    REQUIRE(lib);
    unsigned int min_bits = 512;  // let the test sign with a too-small key; verifiers refuse it
    dkim_options(lib.get(), DKIM_OP_SETOPT, DKIM_OPTS_MINKEYBITS, &min_bits, sizeof min_bits);
    DKIM_STAT st = DKIM_STAT_OK;
    std::string pem = key.private_pem;
    std::unique_ptr<DKIM, DkimFree> d(dkim_sign(
        lib.get(), reinterpret_cast<const unsigned char*>("test"), nullptr, reinterpret_cast<dkim_sigkey_t>(pem.data()),
        reinterpret_cast<const unsigned char*>(selector), reinterpret_cast<const unsigned char*>(domain),
        DKIM_CANON_RELAXED, DKIM_CANON_RELAXED, DKIM_SIGN_RSASHA256, -1, &st));
    REQUIRE(d);
    for (const auto& [n, v] : headers) {
        std::string h = n + ": " + v;
        REQUIRE(dkim_header(d.get(), reinterpret_cast<unsigned char*>(h.data()), h.size()) == DKIM_STAT_OK);
    }
    REQUIRE(dkim_eoh(d.get()) == DKIM_STAT_OK);
    std::string b = body;
    REQUIRE(dkim_body(d.get(), reinterpret_cast<unsigned char*>(b.data()), b.size()) == DKIM_STAT_OK);
    REQUIRE(dkim_eom(d.get(), nullptr) == DKIM_STAT_OK);
    unsigned char* buf = nullptr;
    size_t len = 0;
    REQUIRE(dkim_getsighdr_d(d.get(), std::strlen("DKIM-Signature: "), &buf, &len) == DKIM_STAT_OK);
    return std::string(reinterpret_cast<char*>(buf), len);
}

DkimOutcome verify(Resolver& r, const std::string& signature, const Headers& headers, const std::string& body,
                   const char* sender_domain, std::size_t chunk = 0) {
    DkimVerifier v(r, "test-qid");
    if (!signature.empty()) v.header("DKIM-Signature", signature);
    for (const auto& [n, val] : headers) v.header(n, val);
    v.end_of_headers();
    if (chunk == 0) {
        v.body(body);
    } else {
        for (std::size_t i = 0; i < body.size(); i += chunk) v.body(std::string_view(body).substr(i, chunk));
    }
    return v.finish(sender_domain);
}

struct Dns {
    LdnsResolver net{{test_dns().nameserver()}, 1000ms};
    CachingResolver cache{net, 1000};
};

// Answers from a table; anything else is NXDOMAIN.
class TableResolver : public Resolver {
public:
    std::map<std::string, DnsAnswer> table;
    std::shared_ptr<const DnsAnswer> query(std::string_view name, std::uint16_t) override {
        auto it = table.find(std::string(name));
        auto a = std::make_shared<DnsAnswer>();
        if (it == table.end()) a->status = DnsStatus::nxdomain;
        else *a = it->second;
        return a;
    }
    void txt(const std::string& name, std::vector<std::string> records) {
        DnsAnswer a;
        a.status = DnsStatus::ok;
        a.records = std::move(records);
        table[name] = a;
    }
    void status(const std::string& name, DnsStatus st) {
        DnsAnswer a;
        a.status = st;
        table[name] = a;
    }
};

}  // namespace

TEST_CASE("alignment of d= with the sender domain", "[dkim]") {
    CHECK(dkim_domain_aligned("example.org", "example.org"));
    CHECK(dkim_domain_aligned("Example.ORG.", "example.org"));
    CHECK(dkim_domain_aligned("example.org", "mail.example.org"));
    CHECK(dkim_domain_aligned("mail.example.org", "example.org"));
    CHECK_FALSE(dkim_domain_aligned("a.example.org", "b.example.org"));
    CHECK_FALSE(dkim_domain_aligned("org", "example.org"));
    CHECK_FALSE(dkim_domain_aligned("ample.org", "example.org"));
    CHECK_FALSE(dkim_domain_aligned("", "example.org"));
}

TEST_CASE("a valid signature by the sender domain passes", "[dkim]") {
    Dns d;
    const auto& key = test_dns().key2048();
    const std::string sig = sign(kHeaders, kBody, key, "sel1", "dkim.test");

    auto o = verify(d.cache, sig, kHeaders, kBody, "dkim.test");
    CHECK(o.result == DkimResult::pass);
    CHECK(o.selector == "sel1");
    INFO(o.explanation);

    SECTION("relaxed alignment: a subdomain sender") {
        CHECK(verify(d.cache, sig, kHeaders, kBody, "mail.dkim.test").result == DkimResult::pass);
    }
    SECTION("another sender domain: none, naming the signer") {
        auto other = verify(d.cache, sig, kHeaders, kBody, "example.org");
        CHECK(other.result == DkimResult::none);
        CHECK_THAT(other.explanation, Catch::Contains("dkim.test"));
    }
    SECTION("body in small pieces with bare LF line ends") {
        std::string lf = kBody;
        for (std::size_t p; (p = lf.find("\r\n")) != std::string::npos;) lf.erase(p, 1);
        CHECK(verify(d.cache, sig, kHeaders, lf, "dkim.test", 7).result == DkimResult::pass);
    }
    SECTION("header values with their leading blank kept") {
        Headers spaced;
        for (const auto& [n, v] : kHeaders) spaced.emplace_back(n, " " + v);
        CHECK(verify(d.cache, " " + sig, spaced, kBody, "dkim.test").result == DkimResult::pass);
    }
    SECTION("the key comes from the cache the second time") {
        auto& dns = test_dns();
        const int before = dns.count("sel1._domainkey.dkim.test", "TXT");
        CHECK(verify(d.cache, sig, kHeaders, kBody, "dkim.test").result == DkimResult::pass);
        CHECK(dns.count("sel1._domainkey.dkim.test", "TXT") == before);
    }
}

TEST_CASE("a broken signature fails", "[dkim]") {
    Dns d;
    const auto& key = test_dns().key2048();
    const std::string sig = sign(kHeaders, kBody, key, "sel1", "dkim.test");
    SECTION("altered body") {
        auto o = verify(d.cache, sig, kHeaders, kBody + "P.S. one more line\r\n", "dkim.test");
        CHECK(o.result == DkimResult::fail);
        CHECK_THAT(o.explanation, Catch::Contains("body"));
    }
    SECTION("altered header") {
        Headers h = kHeaders;
        h[2].second = "different numbers";
        CHECK(verify(d.cache, sig, h, kBody, "dkim.test").result == DkimResult::fail);
    }
    SECTION("no key at the selector") {
        const std::string nokey = sign(kHeaders, kBody, key, "missing", "dkim.test");
        auto o = verify(d.cache, nokey, kHeaders, kBody, "dkim.test");
        CHECK(o.result == DkimResult::fail);
        CHECK_THAT(o.explanation, Catch::Contains("key"));
    }
    SECTION("key too small") {
        const std::string small = sign(kHeaders, kBody, test_dns().key512(), "small", "dkim.test");
        auto o = verify(d.cache, small, kHeaders, kBody, "dkim.test");
        CHECK(o.result == DkimResult::fail);
        CHECK_THAT(o.explanation, Catch::Contains("small"));
    }
    SECTION("signed with another key than the published one") {
        const std::string wrong = sign(kHeaders, kBody, test_dns().key1024(), "sel1", "dkim.test");
        CHECK(verify(d.cache, wrong, kHeaders, kBody, "dkim.test").result == DkimResult::fail);
    }
    SECTION("a passing signature wins over a failing one") {
        const std::string bad = sign(kHeaders, kBody + "x\r\n", key, "sel1", "dkim.test");
        DkimVerifier v(d.cache);
        v.header("DKIM-Signature", bad);
        v.header("DKIM-Signature", sig);
        for (const auto& [n, val] : kHeaders) v.header(n, val);
        v.end_of_headers();
        v.body(kBody);
        CHECK(v.finish("dkim.test").result == DkimResult::pass);
    }
}

TEST_CASE("DKIM without signature or with DNS trouble", "[dkim]") {
    Dns d;
    SECTION("unsigned message: none, and the body is not needed") {
        DkimVerifier v(d.cache);
        for (const auto& [n, val] : kHeaders) v.header(n, val);
        v.end_of_headers();
        CHECK_FALSE(v.wants_body());
        auto o = v.finish("dkim.test");
        CHECK(o.result == DkimResult::none);
        CHECK(v.finish("dkim.test").result == DkimResult::none);  // repeatable
    }
    SECTION("unparsable signature header") {
        CHECK(verify(d.cache, "this is not a signature", kHeaders, kBody, "dkim.test").result == DkimResult::none);
    }
    SECTION("key lookup SERVFAIL: temperror") {
        const std::string sig = sign(kHeaders, kBody, test_dns().key2048(), "sel1", "servfail.test");
        auto o = verify(d.cache, sig, kHeaders, kBody, "servfail.test");
        CHECK(o.result == DkimResult::temperror);
        INFO(o.explanation);
    }
    SECTION("key lookup timeout: temperror") {
        LdnsResolver slow({test_dns().nameserver()}, 300ms);
        const std::string sig = sign(kHeaders, kBody, test_dns().key2048(), "sel1", "slow.test");
        CHECK(verify(slow, sig, kHeaders, kBody, "slow.test").result == DkimResult::temperror);
    }
}

TEST_CASE("DKIM verifiers run in parallel", "[dkim]") {
    Dns d;
    const auto& key = test_dns().key2048();
    const std::string good = sign(kHeaders, kBody, key, "sel1", "dkim.test");
    std::atomic<int> right{0};
    std::vector<std::thread> threads;
    for (int t = 0; t < 4; ++t)
        threads.emplace_back([&, t] {
            for (int i = 0; i < 10; ++i) {
                const bool intact = (i + t) % 2 == 0;
                auto o = verify(d.cache, good, kHeaders, intact ? kBody : kBody + "x\r\n", "dkim.test");
                if (o.result == (intact ? DkimResult::pass : DkimResult::fail)) ++right;
            }
        });
    for (auto& t : threads) t.join();
    CHECK(right == 40);
}

TEST_CASE("our DKIM key published at a selector", "[dkim]") {
    Dns d;
    const auto& dns = test_dns();
    SECTION("found at the second selector") {
        auto o = dkim_key_published(d.cache, "dkim.test", {"nope", "sel1"}, dns.key2048().public_b64);
        CHECK(o.result == DkimResult::key_published);
        CHECK(o.selector == "sel1");
    }
    SECTION("PEM armour and line breaks in our key are ignored") {
        const std::string& b64 = dns.key2048().public_b64;
        std::string pem = "-----BEGIN PUBLIC KEY-----\n";
        for (std::size_t i = 0; i < b64.size(); i += 64) pem += b64.substr(i, 64) + "\n";
        pem += "-----END PUBLIC KEY-----\n";
        CHECK(dkim_key_published(d.cache, "DKIM.test.", {"sel1"}, pem).result == DkimResult::key_published);
    }
    SECTION("another key at the selector: none") {
        auto o = dkim_key_published(d.cache, "dkim.test", {"other"}, dns.key2048().public_b64);
        CHECK(o.result == DkimResult::none);
        CHECK_THAT(o.explanation, Catch::Contains("other._domainkey.dkim.test"));
    }
    SECTION("no selector exists: none") {
        CHECK(dkim_key_published(d.cache, "dkim.test", {"a", "b"}, dns.key2048().public_b64).result ==
              DkimResult::none);
    }
    SECTION("our key, but only 512 bits: permerror") {
        auto o = dkim_key_published(d.cache, "dkim.test", {"small"}, dns.key512().public_b64);
        CHECK(o.result == DkimResult::permerror);
        CHECK_THAT(o.explanation, Catch::Contains("512 bits"));
    }
    SECTION("unusable records: permerror") {
        for (const char* sel : {"bad", "junk", "revoked"}) {
            auto o = dkim_key_published(d.cache, "dkim.test", {sel}, dns.key2048().public_b64);
            INFO(sel << ": " << o.explanation);
            CHECK(o.result == DkimResult::permerror);
        }
    }
    SECTION("DNS trouble: temperror") {
        CHECK(dkim_key_published(d.cache, "servfail.test", {"sel1"}, dns.key2048().public_b64).result ==
              DkimResult::temperror);
    }
    SECTION("nothing configured: none") {
        CHECK(dkim_key_published(d.cache, "dkim.test", {}, dns.key2048().public_b64).result == DkimResult::none);
        CHECK(dkim_key_published(d.cache, "dkim.test", {"sel1"}, "").result == DkimResult::none);
    }
}

TEST_CASE("key_published precedence and record rules", "[dkim]") {
    const std::string ours = test_dns().key1024().public_b64;
    TableResolver r;
    r.status("down._domainkey.example.org", DnsStatus::timeout);
    r.txt("good._domainkey.example.org", {"v=DKIM1; k=rsa; p=" + ours});
    r.txt("spaced._domainkey.example.org", {" v = DKIM1 ; p = " + ours.substr(0, 40) + " " + ours.substr(40) + " ;"});
    r.txt("two._domainkey.example.org", {"v=DKIM1; p=" + ours, "v=DKIM1; p=" + ours});
    r.txt("v2._domainkey.example.org", {"v=DKIM2; p=" + ours});
    r.txt("ktype._domainkey.example.org", {"v=DKIM1; k=dsa; p=" + ours});
    r.txt("ed._domainkey.example.org", {"v=DKIM1; k=ed25519; p=11qYAYKxCrfVS/7TyWQHOg7hcvPapiMlrwIaaPcHURo="});

    CHECK(dkim_key_published(r, "example.org", {"down", "good"}, ours).result == DkimResult::key_published);
    CHECK(dkim_key_published(r, "example.org", {"down", "missing"}, ours).result == DkimResult::temperror);
    CHECK(dkim_key_published(r, "example.org", {"down", "v2"}, ours).result == DkimResult::temperror);
    CHECK(dkim_key_published(r, "example.org", {"spaced"}, ours).result == DkimResult::key_published);
    CHECK(dkim_key_published(r, "example.org", {"two"}, ours).result == DkimResult::permerror);
    CHECK(dkim_key_published(r, "example.org", {"v2"}, ours).result == DkimResult::permerror);
    CHECK(dkim_key_published(r, "example.org", {"ktype"}, ours).result == DkimResult::permerror);
    CHECK(dkim_key_published(r, "example.org", {"ed"}, "11qYAYKxCrfVS/7TyWQHOg7hcvPapiMlrwIaaPcHURo=").result ==
          DkimResult::key_published);
}

TEST_CASE("DKIM result names", "[dkim]") {
    CHECK(to_string(DkimResult::pass) == "pass");
    CHECK(to_string(DkimResult::fail) == "fail");
    CHECK(to_string(DkimResult::none) == "none");
    CHECK(to_string(DkimResult::key_published) == "key_published");
    CHECK(to_string(DkimResult::temperror) == "temperror");
    CHECK(to_string(DkimResult::permerror) == "permerror");
}

TEST_CASE("key_names: the key of each signature, from its s= and d=, before any lookup", "[dkim]") {
    TableResolver none;
    DkimVerifier v(none);
    CHECK(v.key_names().empty());
    v.header("DKIM-Signature", " v=1; a=rsa-sha256; d=Example.ORG; s=Sel2024; h=from; bh=x; b=y");
    v.header("From", " a@example.org");
    v.header("DKIM-Signature", " v=1; a=rsa-sha256; s=k1;\r\n\td=esp.example;\r\n\th=from; bh=x; b=y");
    v.header("DKIM-Signature", " v=1; a=rsa-sha256; d=example.org; s=sel2024; h=from; bh=x; b=y");  // the same key
    v.header("DKIM-Signature", " v=1; a=rsa-sha256; d=no-selector.example; h=from; bh=x; b=y");
    v.header("DKIM-Signature", " garbage");
    CHECK(v.key_names() == std::vector<std::string>{"sel2024._domainkey.example.org", "k1._domainkey.esp.example"});
}
