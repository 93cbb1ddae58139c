// Sending quotas: the conf keys, the plain helpers, the SQLite store (exactness, release, window
// rollover, a restart, two handles on one file under concurrency) and MessageSession's
// reserve-at-RCPT / release-on-abort. The Redis store runs the same store tests against the
// Redis that PREFLIGHT_TEST_REDIS=HOST:PORT names: tests/unit/with_redis.sh and
// tests/integration/quota_postfix.sh start one and run "[redis]"; without it that case fails.
#include <catch2/catch.hpp>

#include <unistd.h>

#include <atomic>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <thread>

#include "fake_resolver.hpp"
#include "message_session.hpp"
#include "quota.hpp"
#include "test_redis.hpp"

using namespace preflight;

// Every refusal ends with the line naming who refused (reply_table.hpp), joined by reply_text().
static std::string marked() { return " " + std::string(refusal_marker); }

namespace {

struct TempDir {
    std::string path;
    TempDir() {
        std::string tmpl = (std::filesystem::temp_directory_path() / "preflight-quota-XXXXXX").string();
        REQUIRE(mkdtemp(tmpl.data()) != nullptr);
        path = tmpl;
    }
    ~TempDir() {
        std::error_code ec;
        std::filesystem::remove_all(path, ec);
    }
};

constexpr std::int64_t kT0 = 1'800'000'000'000;  // ms; a multiple of every bucket size

// Without EgressAddresses the default AuthPolicy is a conf error; these tests are not about it.
std::string with_egress(const std::string& text) {
    return text.find("EgressAddresses") == std::string::npos ? "EgressAddresses 192.0.2.1\n" + text : text;
}

std::shared_ptr<const Config> load(const std::string& text) {
    auto r = parse_config_text("q.conf", with_egress(text));
    INFO((r.errors.empty() ? std::string() : r.errors.front().to_string()));
    REQUIRE(r.ok());
    return r.config;
}

std::string error_of(const std::string& text) {
    auto r = parse_config_text("q.conf", text + "\nEgressAddresses 192.0.2.1\n");
    return r.errors.empty() ? std::string() : r.errors.front().to_string();
}

QuotaCounter counter(std::string key, QuotaWindow w, std::uint32_t limit, std::uint32_t amount = 1) {
    return {std::move(key), w, limit, amount};
}

using test::test_redis;

std::string unique_subject(const char* base) {
    return std::string(base) + "-" + std::to_string(getpid()) + "-" +
           std::to_string(std::chrono::steady_clock::now().time_since_epoch().count());
}

// The store behaviour both stores must have.
void store_contract(QuotaStore& store, const std::string& subject) {
    std::string key = "domain:" + subject + "|recipients|minute";
    std::vector<QuotaCounter> c{counter(key, QuotaWindow::minute, 3)};
    // Exactly the limit, then over.
    for (int i = 0; i < 3; ++i) {
        QuotaResult r = store.reserve(c, false, kT0 + i * 1000);
        REQUIRE(r.ok);
        CHECK(r.over == -1);
        CHECK(r.counted);
        CHECK(r.used[0] == static_cast<std::uint64_t>(i));
    }
    QuotaResult over = store.reserve(c, false, kT0 + 10'000);
    REQUIRE(over.ok);
    CHECK(over.over == 0);
    CHECK_FALSE(over.counted);
    CHECK(over.used[0] == 3);
    // The first one (bucket kT0) leaves the window at kT0 + 60 s: 50 s from now.
    CHECK(over.retry_seconds == 50);
    // Force (dry-run, tag) counts beyond the limit.
    QuotaResult forced = store.reserve(c, true, kT0 + 10'000);
    CHECK(forced.over == 0);
    CHECK(forced.counted);
    // Release gives it back.
    REQUIRE(store.release(std::vector<QuotaHeld>{{key, forced.buckets[0], 1}}));
    CHECK(store.reserve(std::vector<QuotaCounter>{counter(key, QuotaWindow::minute, 3, 0)}, false, kT0 + 10'000)
              .used[0] == 3);
    // Window rollover: at +60 s the first bucket is gone, one more fits; at +62 s all three.
    QuotaResult later = store.reserve(c, false, kT0 + 60'000);
    CHECK(later.over == -1);
    CHECK(later.used[0] == 2);
    QuotaResult again = store.reserve(c, false, kT0 + 60'500);
    CHECK(again.over == 0);
    CHECK(again.retry_seconds == 1);  // the bucket of kT0 + 1 s leaves at kT0 + 61 s: 0.5 s, rounded up
    CHECK(store.reserve(std::vector<QuotaCounter>{counter(key, QuotaWindow::minute, 3, 0)}, false, kT0 + 200'000)
              .used[0] == 0);
    // Several counters move together: the message counter over blocks the recipient one too.
    std::string rk = "domain:" + subject + "|recipients|day", mk = "domain:" + subject + "|messages|hour";
    std::vector<QuotaCounter> both{counter(rk, QuotaWindow::day, 100), counter(mk, QuotaWindow::hour, 1)};
    CHECK(store.reserve(both, false, kT0).over == -1);
    QuotaResult blocked = store.reserve(both, false, kT0 + 1000);
    CHECK(blocked.over == 1);
    CHECK(blocked.used[0] == 1);
    CHECK(store.reserve(std::vector<QuotaCounter>{counter(rk, QuotaWindow::day, 100, 0)}, false, kT0 + 2000).used[0] ==
          1);
    std::string error;
    auto keys = store.keys(&error);
    REQUIRE(keys);
    CHECK(std::find(keys->begin(), keys->end(), rk) != keys->end());
}

// Threads on two handles reserve against one limit: exactly the limit gets through.
void concurrent_exact(QuotaStore& a, QuotaStore& b, const std::string& subject) {
    const std::uint32_t limit = 200;
    std::string key = "domain:" + subject + "|recipients|day";
    std::atomic<int> accepted{0}, errors{0};
    auto worker = [&](QuotaStore& s) {
        std::vector<QuotaCounter> c{counter(key, QuotaWindow::day, limit)};
        for (int i = 0; i < 150; ++i) {
            QuotaResult r = s.reserve(c, false, kT0 + 5000);
            if (!r.ok) ++errors;
            else if (r.counted) ++accepted;
        }
    };
    std::vector<std::thread> threads;
    for (int t = 0; t < 4; ++t) threads.emplace_back(worker, t % 2 ? std::ref(a) : std::ref(b));
    for (auto& t : threads) t.join();
    CHECK(errors == 0);
    CHECK(accepted == static_cast<int>(limit));
}

}  // namespace

TEST_CASE("quota keys: rates, defaults, per-domain overrides, errors", "[quota][config]") {
    auto none = load("");
    CHECK(none->defaults().quota_recipients.empty());
    CHECK_FALSE(none->any_quota());
    CHECK(none->global().quota_store.to_string() == "sqlite:/var/lib/preflight/quota.db");
    CHECK(none->global().on_quota_store_error == QuotaStoreErrorAction::tempfail);

    auto c = load(
        "QuotaRecipients 10000/day, 500/HOUR 100/minute\nQuotaMessages 50/minute\n"
        "Domain bulk.example QuotaRecipients 50000/day\nDomain bulk.example QuotaPer sender\n"
        "Domain strict.example QuotaCode 550\nDomain free.example QuotaMode off\n"
        "QuotaStore redis://[::1]:6380/2\nOnQuotaStoreError accept\nQuotaStoreTimeout 250ms\n");
    CHECK(c->any_quota());
    const Settings& d = c->defaults();
    REQUIRE(d.quota_recipients.size() == 3);
    CHECK(d.quota_recipients[0] == QuotaRate{10000, QuotaWindow::day});
    CHECK(d.quota_recipients[1] == QuotaRate{500, QuotaWindow::hour});
    CHECK(to_string(d.quota_recipients) == "10000/day, 500/hour, 100/minute");
    CHECK(d.quota_per == QuotaPer::domain);
    CHECK(d.quota_code == 452);
    const Settings& bulk = c->for_sender_domain("bulk.example");
    CHECK(to_string(bulk.quota_recipients) == "50000/day");
    CHECK(to_string(bulk.quota_messages) == "50/minute");  // inherited
    CHECK(bulk.quota_per == QuotaPer::sender);
    CHECK(c->for_sender_domain("strict.example").quota_code == 550);
    CHECK_FALSE(c->for_sender_domain("free.example").has_quota());
    const GlobalSettings& g = c->global();
    CHECK(g.quota_store.kind == QuotaStoreSpec::Kind::redis);
    CHECK(g.quota_store.host == "::1");
    CHECK(g.quota_store.port == 6380);
    CHECK(g.quota_store.db == 2);
    CHECK(g.quota_store_timeout == std::chrono::milliseconds(250));
    CHECK(g.on_quota_store_error == QuotaStoreErrorAction::accept);
    CHECK(load("QuotaRecipients none")->defaults().quota_recipients.empty());
    CHECK(load("Domain a.example QuotaMessages 5/hour")->any_quota());

    CHECK(
        error_of("QuotaRecipients 10000") ==
        "q.conf:1: QuotaRecipients: \"10000\" is not a quota (a number, '/', and minute, hour, day, week or month: 10000/day)");
    CHECK(error_of("QuotaRecipients 10/fortnight").find("is not a quota") != std::string::npos);
    CHECK(load("QuotaRecipients 100000/month, 5000/week")->defaults().quota_recipients ==
          std::vector<QuotaRate>{{100000, QuotaWindow::month}, {5000, QuotaWindow::week}});
    CHECK(error_of("QuotaRecipients 0/day") ==
          "q.conf:1: QuotaRecipients: \"0/day\" is out of range (1..1000000000 per window)");
    CHECK(error_of("QuotaRecipients 10/day 20/day") ==
          "q.conf:1: QuotaRecipients: \"20/day\": a second quota per day; give each window once");
    CHECK(error_of("QuotaCode 451") == "q.conf:1: QuotaCode: \"451\" is not one of 452, 550");
    CHECK(error_of("QuotaPer user") == "q.conf:1: QuotaPer: \"user\" is not one of domain, sender, login");
    CHECK(error_of("QuotaStore /var/lib/q.db") ==
          "q.conf:1: QuotaStore: \"/var/lib/q.db\" is not sqlite:/PATH, redis://HOST[:PORT][/DB] or "
          "redis-sentinel://HOST[:PORT],.../MASTER");
    CHECK(error_of("QuotaStore sqlite:q.db").find("give an absolute path") != std::string::npos);
    CHECK(error_of("QuotaStore redis://127.0.0.1:99999").find("is not a port") != std::string::npos);
    CHECK(error_of("QuotaStore redis://127.0.0.1/16").find("0..15") != std::string::npos);
    CHECK(error_of("QuotaStore redis://bad_host!").find("is not a host") != std::string::npos);
    CHECK(error_of("Domain x.example QuotaStore redis://h")
              .starts_with("q.conf:1: QuotaStore: cannot be set per domain"));
    CHECK(parse_quota_store("redis://cache.example")->to_string() == "redis://cache.example:6379");
}

TEST_CASE("quota helpers: subjects, counters, durations", "[quota]") {
    CHECK(quota_subject(QuotaPer::domain, "Alice@Example.ORG", "Example.ORG", "") == "domain:example.org");
    CHECK(quota_subject(QuotaPer::sender, "Alice@Example.ORG", "Example.ORG", "") == "sender:alice@example.org");
    CHECK(quota_subject(QuotaPer::login, "alice@example.org", "example.org", "Alice") == "login:Alice");
    CHECK(quota_subject(QuotaPer::login, "alice@example.org", "example.org", "") == "sender:alice@example.org");
    CHECK(quota_subject(QuotaPer::domain, "", "", "") == "");
    CHECK(quota_subject_text("domain:example.org") == "example.org");
    CHECK(quota_subject_text("login:alice") == "login alice");

    Settings s;
    s.quota_recipients = {{10, QuotaWindow::day}, {2, QuotaWindow::minute}};
    s.quota_messages = {{5, QuotaWindow::hour}};
    auto first = quota_counters(s, "domain:x.example", true);
    REQUIRE(first.size() == 3);
    CHECK(first[0].key == "domain:x.example|recipients|day");
    CHECK(first[2].key == "domain:x.example|messages|hour");
    CHECK(quota_counters(s, "domain:x.example", false).size() == 2);

    CHECK(duration_words(0) == "1 s");
    CHECK(duration_words(42) == "42 s");
    CHECK(duration_words(61) == "2 min");
    CHECK(duration_words(3600) == "1 h");
    CHECK(duration_words(3 * 3600 + 11 * 60 + 1) == "3 h 12 min");

    QuotaResult r;
    r.over = 0;
    r.retry_seconds = 3 * 3600 + 12 * 60;
    std::vector<QuotaCounter> c{counter("domain:example.org|recipients|day", QuotaWindow::day, 10000)};
    Verdict v = quota_verdict(r, c, "domain:example.org", 452, QuotaStoreErrorAction::tempfail);
    CHECK(v.action == Verdict::Action::tempfail);
    CHECK(reply_text(render(v)).starts_with(
        "452 4.7.1 Sending quota of 10000 recipients per day for example.org reached; it resets in 3 h 12 min"));
    CHECK(quota_verdict(r, c, "domain:example.org", 550, QuotaStoreErrorAction::tempfail).action ==
          Verdict::Action::reject);
    QuotaResult down;
    down.ok = false;
    down.error = "connection refused";
    Verdict d = quota_verdict(down, c, "domain:example.org", 452, QuotaStoreErrorAction::tempfail);
    CHECK(reply_text(render(d)) ==
          "451 4.3.0 Sending quota cannot be checked at the moment; please try again later" +
              marked());
    CHECK(quota_verdict(down, c, "domain:example.org", 452, QuotaStoreErrorAction::accept).accepted());
}

TEST_CASE("SQLite store: exact limit, release, force, window rollover", "[quota][sqlite]") {
    TempDir dir;
    auto store = open_quota_store(*parse_quota_store("sqlite:" + dir.path + "/q.db"), std::chrono::milliseconds(1000));
    store_contract(*store, "example.org");
    CHECK(store->describe() == "sqlite:" + dir.path + "/q.db");
}

TEST_CASE("SQLite store: usage survives a restart", "[quota][sqlite]") {
    TempDir dir;
    auto spec = *parse_quota_store("sqlite:" + dir.path + "/q.db");
    std::vector<QuotaCounter> c{counter("domain:example.org|recipients|day", QuotaWindow::day, 5)};
    {
        auto store = open_quota_store(spec, std::chrono::milliseconds(1000));
        for (int i = 0; i < 4; ++i) REQUIRE(store->reserve(c, false, kT0).counted);
    }
    auto reopened = open_quota_store(spec, std::chrono::milliseconds(1000));
    QuotaResult r = reopened->reserve(c, false, kT0 + 3600'000);
    CHECK(r.used[0] == 4);
    CHECK(r.counted);
    CHECK(reopened->reserve(c, false, kT0 + 3600'000).over == 0);
}

TEST_CASE("SQLite store: two handles on one file, concurrently, never overshoot", "[quota][sqlite]") {
    TempDir dir;
    auto spec = *parse_quota_store("sqlite:" + dir.path + "/q.db");
    auto a = open_quota_store(spec, std::chrono::milliseconds(5000));
    auto b = open_quota_store(spec, std::chrono::milliseconds(5000));
    concurrent_exact(*a, *b, "example.org");
}

TEST_CASE("SQLite store: an unusable path is an error at open", "[quota][sqlite]") {
    CHECK_THROWS(open_quota_store(*parse_quota_store("sqlite:/nonexistent-dir/q.db"), std::chrono::milliseconds(100)));
}

TEST_CASE("SQLite store: a symlink planted at the path is not followed", "[quota][sqlite][hostile]") {
    // The milter opens the store as root: a link to another file must not make it write there.
    TempDir dir;
    const std::string target = dir.path + "/target", link = dir.path + "/q.db";
    { std::ofstream(target) << "not a database\n"; }
    REQUIRE(::symlink(target.c_str(), link.c_str()) == 0);
    CHECK_THROWS_WITH(open_quota_store(*parse_quota_store("sqlite:" + link), std::chrono::milliseconds(100)),
                      Catch::Contains("cannot open " + link));
    std::ifstream in(target);
    std::string line;
    std::getline(in, line);
    CHECK(line == "not a database");
}

// Hidden ([.redis]): it needs a running Redis, so only the entries that start one run it
// (ctest's milter.redis_store through tests/unit/with_redis.sh, and integration.quota).
TEST_CASE("Redis store: the same contract, and concurrency across connections", "[quota][.redis]") {
    auto store = test_redis();
    if (!store) FAIL("PREFLIGHT_TEST_REDIS is not set: run this case through tests/unit/with_redis.sh");
    store_contract(*store, unique_subject("contract.example"));
    auto other = test_redis();
    concurrent_exact(*store, *other, unique_subject("concurrent.example"));
}

TEST_CASE("Redis store: nothing listening is a store error, not a crash", "[quota][redis]") {
    auto store = open_quota_store(*parse_quota_store("redis://127.0.0.1:1"), std::chrono::milliseconds(200));
    std::vector<QuotaCounter> c{counter("domain:x|recipients|day", QuotaWindow::day, 5)};
    QuotaResult r = store->reserve(c, false, kT0);
    CHECK_FALSE(r.ok);
    CHECK_FALSE(r.error.empty());
    // The next attempt within a second fails fast without connecting.
    QuotaResult again = store->reserve(c, false, kT0);
    CHECK_FALSE(again.ok);
    CHECK(again.error.find("unreachable") != std::string::npos);
    CHECK_FALSE(store->release(std::vector<QuotaHeld>{{"domain:x|recipients|day", 1, 1}}));
}

// ---- MessageSession: reserve at RCPT TO, keep at an accepted end of message, release otherwise

namespace {

struct QuotaFixture {
    TempDir dir;
    FakeResolver dns;
    std::unique_ptr<QuotaStore> store;
    MilterServices services;
    std::int64_t now = kT0;

    explicit QuotaFixture(const std::string& conf) {
        using S = DnsStatus;
        for (const char* d : {"good.test", "dry.test", "tag.test"}) {
            dns.set(d, rrtype::MX, S::ok, {std::string("10 mx.") + d}, {{10, std::string("mx.") + d}});
            dns.set(d, rrtype::TXT, S::ok, {"v=spf1 ip4:127.0.0.0/8 -all"});
        }
        services.config =
            load("EgressAddresses 127.0.0.1\nAuthPolicy spf\nQuotaStore sqlite:" + dir.path + "/q.db\n" + conf);
        store = open_quota_store(services.config->global().quota_store, std::chrono::milliseconds(1000));
        services.resolver = &dns;
        services.egress_ips = {"127.0.0.1"};
        services.quota_store = store.get();
        services.now_ms = [this] { return now; };
    }
    std::uint64_t used(const std::string& key, QuotaWindow w = QuotaWindow::day) {
        return store->reserve(std::vector<QuotaCounter>{counter(key, w, 1, 0)}, false, now).used[0];
    }
};

std::string reply_of(const Verdict& v) { return reply_text(render(v)); }

}  // namespace

TEST_CASE("session: recipients beyond the quota get 452 at RCPT, accepted mail stays counted", "[quota][session]") {
    QuotaFixture f("QuotaRecipients 3/day\nQuotaMessages 2/hour\n");
    {
        MessageSession s(f.services);
        REQUIRE(s.mail_from("<alice@good.test>", {}).accepted());
        CHECK(s.rcpt_to("<a@example.org>").accepted());
        CHECK(s.rcpt_to("<b@example.org>").accepted());
        CHECK(s.quota_held().size() == 3);  // 2 recipients + the message
        CHECK(s.end_of_message().accepted());
        CHECK(s.quota_held().empty());
    }
    CHECK(f.used("domain:good.test|recipients|day") == 2);
    CHECK(f.used("domain:good.test|messages|hour", QuotaWindow::hour) == 1);
    f.now += 3600'000;  // the hour window is empty again, the day one is not
    MessageSession s(f.services);
    REQUIRE(s.mail_from("<bob@GOOD.test>", {}).accepted());
    CHECK(s.rcpt_to("<c@example.org>").accepted());
    Verdict v = s.rcpt_to("<d@example.org>");
    CHECK(v.action == Verdict::Action::tempfail);
    CHECK(v.check == "quota");
    CHECK(reply_of(v).starts_with(
        "452 4.7.1 Sending quota of 3 recipients per day for good.test reached; it resets in "));
    CHECK(s.accepted_recipients() == 1);
    CHECK(s.end_of_message().accepted());
    CHECK(f.used("domain:good.test|recipients|day") == 3);
}

TEST_CASE("session: an aborted or refused transaction gives its reservation back", "[quota][session]") {
    QuotaFixture f("QuotaRecipients 2/day\nQuotaMessages 10/day\nDomain good.test MaxMessageSize 1K\n");
    {
        MessageSession s(f.services);
        REQUIRE(s.mail_from("<alice@good.test>", {}).accepted());
        CHECK(s.rcpt_to("<a@example.org>").accepted());
        CHECK(s.rcpt_to("<b@example.org>").accepted());
        CHECK(f.used("domain:good.test|recipients|day") == 2);  // reserved
    }                                                           // aborted: the session goes without end of message
    CHECK(f.used("domain:good.test|recipients|day") == 0);
    CHECK(f.used("domain:good.test|messages|day") == 0);
    {
        MessageSession s(f.services);
        REQUIRE(s.mail_from("<alice@good.test>", {}).accepted());
        CHECK(s.rcpt_to("<a@example.org>").accepted());
        s.end_of_headers();
        CHECK_FALSE(s.body(std::string(2000, 'x')).accepted());  // size refusal
        CHECK_FALSE(s.end_of_message().accepted());
        CHECK(f.used("domain:good.test|recipients|day") == 0);
    }
    // A recipient another check refuses never reserves.
    QuotaFixture g("QuotaRecipients 1/day\nMaxRecipients 1\n");
    MessageSession s(g.services);
    REQUIRE(s.mail_from("<alice@good.test>", {}).accepted());
    CHECK_FALSE(s.rcpt_to("<not an address>").accepted());
    CHECK(s.rcpt_to("<a@example.org>").accepted());
    Verdict v = s.rcpt_to("<b@example.org>");
    CHECK(v.check == "recipients");
    CHECK(g.used("domain:good.test|recipients|day") == 1);
}

TEST_CASE("session: per sender and per login; bounces are not counted", "[quota][session]") {
    QuotaFixture f("QuotaRecipients 1/day\nQuotaPer sender\nDomain tag.test QuotaPer login\n");
    MessageSession a(f.services);
    REQUIRE(a.mail_from("<alice@good.test>", {}).accepted());
    CHECK(a.rcpt_to("<x@example.org>").accepted());
    MessageSession b(f.services);
    REQUIRE(b.mail_from("<bob@good.test>", {}).accepted());
    CHECK(b.rcpt_to("<x@example.org>").accepted());  // another sender, another quota
    CHECK_FALSE(a.rcpt_to("<y@example.org>").accepted());
    MessageSession c(f.services);
    REQUIRE(c.mail_from("<alice@tag.test>", {}, "alice-login").accepted());
    CHECK(c.rcpt_to("<x@example.org>").accepted());
    CHECK(f.used("login:alice-login|recipients|day") == 1);
    MessageSession bounce(f.services);
    REQUIRE(bounce.mail_from("<>", {}).accepted());
    for (int i = 0; i < 3; ++i) CHECK(bounce.rcpt_to("<x@example.org>").accepted());
    CHECK(bounce.quota_held().empty());
}

TEST_CASE("session: dry-run and tag accept beyond the quota and count; off does nothing", "[quota][session]") {
    QuotaFixture f(
        "QuotaRecipients 1/day\nDomain dry.test Mode dry-run\nDomain tag.test QuotaMode tag\n"
        "Domain good.test QuotaMode off\nDomain *.good.test QuotaCode 550\n");
    MessageSession dry(f.services);
    REQUIRE(dry.mail_from("<a@dry.test>", {}).accepted());
    CHECK(dry.rcpt_to("<x@example.org>").accepted());
    Verdict v = dry.rcpt_to("<y@example.org>");
    CHECK(v.accepted());
    auto notes = dry.take_notes();
    REQUIRE(notes.size() == 1);
    CHECK(notes[0].dry_run);
    CHECK(notes[0].would == Verdict::Action::tempfail);
    CHECK(dry.end_of_message().accepted());
    CHECK(f.used("domain:dry.test|recipients|day") == 2);

    MessageSession tag(f.services);
    REQUIRE(tag.mail_from("<a@tag.test>", {}).accepted());
    CHECK(tag.rcpt_to("<x@example.org>").accepted());
    CHECK(tag.rcpt_to("<y@example.org>").accepted());
    REQUIRE(tag.tag_headers().size() == 1);
    CHECK(tag.tag_headers()[0].name == "X-Preflight-Quota");

    MessageSession off(f.services);
    REQUIRE(off.mail_from("<a@good.test>", {}).accepted());
    CHECK(off.rcpt_to("<x@example.org>").accepted());
    CHECK(off.rcpt_to("<y@example.org>").accepted());
    CHECK(off.quota_held().empty());
}

TEST_CASE("session: a store that fails tempfails, or accepts uncounted when so configured", "[quota][session]") {
    for (bool accept : {false, true}) {
        FakeResolver dns;
        dns.set("good.test", rrtype::MX, DnsStatus::ok, {"10 mx.good.test"}, {{10, "mx.good.test"}});
        MilterServices services;
        services.config = load(std::string("AuthPolicy off\nQuotaRecipients 5/day\nQuotaStore redis://127.0.0.1:1\n"
                                           "QuotaStoreTimeout 100ms\n") +
                               (accept ? "OnQuotaStoreError accept\n" : ""));
        auto store =
            open_quota_store(services.config->global().quota_store, services.config->global().quota_store_timeout);
        services.resolver = &dns;
        services.quota_store = store.get();
        MessageSession s(services);
        REQUIRE(s.mail_from("<a@good.test>", {}).accepted());
        Verdict v = s.rcpt_to("<x@example.org>");
        if (accept) {
            CHECK(v.accepted());
            auto notes = s.take_notes();
            REQUIRE(notes.size() == 1);
            CHECK(notes[0].reply == ReplyId::quota_store_failure);
        } else {
            CHECK(v.action == Verdict::Action::tempfail);
            CHECK(reply_of(v).starts_with("451 4.3.0 Sending quota cannot be checked at the moment"));
        }
    }
}

TEST_CASE("quota keys: written and read back in one format", "[quota]") {
    CHECK(quota_key("domain:example.org", "recipients", QuotaWindow::day) == "domain:example.org|recipients|day");
    auto k = parse_quota_key("sender:a@example.org|messages|hour");
    REQUIRE(k);
    CHECK(k->subject == "sender:a@example.org");
    CHECK(k->unit == "messages");
    CHECK(k->window == QuotaWindow::hour);
    // The counters a recipient makes are keys of that format.
    Settings with_rates;
    with_rates.quota_recipients = {QuotaRate{100, QuotaWindow::hour}};
    with_rates.quota_messages = {QuotaRate{10, QuotaWindow::minute}};
    auto counters = quota_counters(with_rates, "login:Alice", true);
    REQUIRE(counters.size() == 2);
    for (const QuotaCounter& c : counters) {
        auto parsed = parse_quota_key(c.key);
        REQUIRE(parsed);
        CHECK(parsed->subject == "login:Alice");
        CHECK(parsed->window == c.window);
    }
    CHECK_FALSE(parse_quota_key("domain:example.org|recipients"));
    CHECK_FALSE(parse_quota_key("domain:example.org|recipients|fortnight"));
    CHECK_FALSE(parse_quota_key("no bars"));
}
