// The suppression list: whose fault suppresses (per category), the merge rule, both stores against
// one contract (SQLite here; Redis through tests/unit/with_redis.sh), the RCPT TO verdict and its
// reply, the trace token.
#include <catch2/catch.hpp>

#include <unistd.h>

#include <cstdlib>
#include <ctime>
#include <filesystem>

#include "checks/quota/test_redis.hpp"
#include "reply_table.hpp"
#include "suppression.hpp"
#include "trace_header.hpp"

using namespace preflight;

namespace {

constexpr std::int64_t kDay = 86400;
constexpr std::int64_t kNow = 1'796'000'000;  // 2026-11-30

Settings settings(const std::string& conf = "") {
    auto parsed = parse_config_text("t.conf", "EgressAddresses 127.0.0.1\n" + conf);
    for (const auto& e : parsed.errors) UNSCOPED_INFO(e.to_string());
    REQUIRE(parsed.ok());
    return parsed.config->for_sender_domain("example.org");
}

SuppressionRecord failure(std::string_view category, std::string_view recipient, std::int64_t now,
                          const Settings& s = Settings{}, std::string_view scope_domain = "example.org") {
    SuppressionOutcome o = suppression_outcome(category, true, false, s);
    auto r = suppression_record(o, scope_domain, recipient, category, "550 5.1.1 <bob@example.net>: user unknown",
                                "mx.example.net", SuppressionSource::log, s, now);
    REQUIRE(r);
    return *r;
}

struct TempDb {
    std::filesystem::path path;
    TempDb() {
        path = std::filesystem::temp_directory_path() /
               ("preflight-suppression-" + std::to_string(getpid()) + "-" +
                std::to_string(std::chrono::steady_clock::now().time_since_epoch().count()) + ".db");
    }
    ~TempDb() {
        for (const char* suffix : {"", "-wal", "-shm"}) std::filesystem::remove(path.string() + suffix);
    }
    std::unique_ptr<SuppressionStore> open() const {
        return open_suppression_store({QuotaStoreSpec::Kind::sqlite, path.string(), "", 0, 0, {}, {}},
                                      std::chrono::milliseconds(500));
    }
};

// Unique per run, so the Redis cases need no flush.
std::string unique_domain(const char* base) {
    return std::string(base) + "-" + std::to_string(getpid()) + "-" +
           std::to_string(std::chrono::steady_clock::now().time_since_epoch().count()) + ".test";
}

// What every store must do, over the clock base_now. Redis expires keys by its own clock
// (EXPIREAT), so its run uses the real time; the store is asked with `now` as given throughout.
void store_contract(SuppressionStore& store, const std::int64_t kNow) {
    const std::string dom = unique_domain("sender");
    const std::string other = unique_domain("other");
    const std::string bob = "bob@" + unique_domain("dead");
    std::string error;

    CHECK(store.lookup(dom, bob, kNow).ok);
    CHECK_FALSE(store.lookup(dom, bob, kNow).entry);

    auto e = store.record(failure("bad-mailbox", bob, kNow, Settings{}, dom), &error);
    INFO(error);
    REQUIRE(e);
    CHECK(e->active);
    SuppressionLookup l = store.lookup(dom, bob, kNow + 1);
    REQUIRE(l.ok);
    REQUIRE(l.entry);
    CHECK(l.entry->scope == dom);
    CHECK(l.entry->category == "bad-mailbox");
    CHECK(l.entry->reply == "550 5.1.1 <bob@example.net>: user unknown");
    CHECK(l.entry->remote_mta == "mx.example.net");
    CHECK(l.entry->source == SuppressionSource::log);
    CHECK(l.entry->first_seen == kNow);
    // Scope: another sender domain still sends to it.
    CHECK_FALSE(store.lookup(other, bob, kNow + 1).entry);
    // Expiry (180 days by default): gone after it, with no clean-up needed.
    CHECK(store.lookup(dom, bob, kNow + 179 * kDay).entry);
    CHECK_FALSE(store.lookup(dom, bob, kNow + 181 * kDay).entry);

    // A full mailbox: only the third failure within 7 days suppresses.
    const std::string full = "full@" + unique_domain("full");
    for (int i = 0; i < 2; ++i) {
        auto f = store.record(failure("quota-issues", full, kNow + i * kDay, Settings{}, dom), &error);
        REQUIRE(f);
        CHECK_FALSE(f->active);
        CHECK_FALSE(store.lookup(dom, full, kNow + i * kDay).entry);
    }
    auto third = store.record(failure("quota-issues", full, kNow + 2 * kDay, Settings{}, dom), &error);
    REQUIRE(third);
    CHECK(third->active);
    CHECK(third->count == 3);
    CHECK(store.lookup(dom, full, kNow + 2 * kDay).entry);

    // Global scope: every sender domain is refused.
    const std::string gone = "gone@" + unique_domain("global");
    Settings global = settings("SuppressionScope global");
    REQUIRE(store.record(failure("bad-domain", gone, kNow, global, dom), &error));
    CHECK(store.lookup(other, gone, kNow).entry);
    CHECK(store.lookup(other, gone, kNow).entry->scope == "*");

    // list with filters, stats, remove.
    SuppressionFilter f;
    f.scope = dom;
    auto listed = store.list(f, kNow + 2 * kDay, &error);
    REQUIRE(listed);
    CHECK(listed->size() == 2);  // bob and full
    f.category = "quota-issues";
    listed = store.list(f, kNow + 2 * kDay, &error);
    REQUIRE(listed);
    REQUIRE(listed->size() == 1);
    CHECK(listed->front().recipient == full);
    auto stats = store.stats(kNow + 2 * kDay, &error);
    REQUIRE(stats);
    CHECK_FALSE(stats->entries_by_reason.empty());
    CHECK(store.count_sender_fault(dom, "spam-related", &error));
    stats = store.stats(kNow, &error);
    REQUIRE(stats);
    bool found = false;
    for (const auto& [k, n] : stats->sender_faults) found = found || (k == dom + "|spam-related" && n == 1);
    CHECK(found);

    auto removed = store.remove(dom, bob, &error);
    REQUIRE(removed);
    CHECK(*removed == 1);
    CHECK_FALSE(store.lookup(dom, bob, kNow + 1).entry);
    removed = store.remove("", gone, &error);  // every scope
    REQUIRE(removed);
    CHECK(*removed == 1);

    // Trace tokens.
    CHECK(store.put_trace("0123456789abcdef0123456789abcdef", dom, bob, kNow + 10, &error));
    auto t = store.find_trace("0123456789abcdef0123456789abcdef", kNow, &error);
    REQUIRE(t);
    CHECK(t->first == dom);
    CHECK(t->second == bob);
}

}  // namespace

TEST_CASE("suppression: whose fault suppresses, per category", "[suppression]") {
    const Settings s;
    using O = SuppressionOutcome;
    for (const char* c : {"bad-mailbox", "bad-domain", "inactive-mailbox"}) {
        INFO(c);
        CHECK(suppression_outcome(c, true, false, s) == O::suppress);
        CHECK(suppression_outcome(c, false, false, s) == O::none);  // a deferral is not final
    }
    CHECK(suppression_outcome("quota-issues", true, false, s) == O::soft_failure);
    CHECK(suppression_outcome("quota-issues", false, false, s) == O::soft_failure);
    for (const char* c : {"spam-related", "policy-related", "invalid-sender", "bad-configuration", "relaying-issues",
                          "content-related", "virus-related", "protocol-errors"}) {
        INFO(c);
        CHECK(suppression_outcome(c, true, false, s) == O::sender_fault);
        CHECK_FALSE(suppression_record(O::sender_fault, "example.org", "bob@example.net", c, "550", "",
                                       SuppressionSource::log, s, kNow));
    }
    for (const char* c :
         {"bad-connection", "no-answer-from-host", "routing-errors", "message-expired", "other", "success"})
        CHECK(suppression_outcome(c, true, false, s) == O::none);
    CHECK(suppression_outcome("other", true, true, s) == O::suppress);  // a complaint
    CHECK(suppression_outcome("other", true, true, settings("SuppressComplaints no")) == O::none);
}

TEST_CASE("suppression: records take the scope, expiry and threshold from the conf", "[suppression]") {
    Settings s = settings(
        "SuppressionExpiry 30d\nSuppressionComplaintExpiry 400d\nSuppressionQuotaFailures 5\n"
        "SuppressionQuotaPeriod 2d\nSuppressionScope global");
    auto r =
        suppression_record(SuppressionOutcome::suppress, "Example.ORG", "<Bob@Example.NET>", "bad-mailbox",
                           "550 5.1.1\r\nuser\tunknown\x01\xff", "mx.example.net", SuppressionSource::log, s, kNow);
    REQUIRE(r);
    CHECK(r->entry.scope == "*");
    CHECK(r->entry.recipient == "bob@example.net");
    CHECK(r->entry.reply == "550 5.1.1 user unknown?");
    CHECK(r->expiry == 30 * kDay);
    CHECK(r->threshold == 1);
    auto c = suppression_record(SuppressionOutcome::suppress, "example.org", "bob@example.net", "other", "", "",
                                SuppressionSource::complaint, s, kNow);
    REQUIRE(c);
    CHECK(c->entry.category == "complaint");
    CHECK(c->expiry == 400 * kDay);
    auto q = suppression_record(SuppressionOutcome::soft_failure, "example.org", "bob@example.net", "quota-issues", "",
                                "", SuppressionSource::bounce, s, kNow);
    REQUIRE(q);
    CHECK(q->threshold == 5);
    CHECK(q->period == 2 * kDay);
    CHECK(suppression_scope(SuppressionScope::domain, "Example.ORG.") == "example.org");
    CHECK(normalise_recipient("no-at-sign").empty());
    CHECK(normalise_recipient("a b@example.net").empty());
}

TEST_CASE("suppression: soft failures older than the period start the count afresh", "[suppression]") {
    std::optional<SuppressionEntry> e;
    for (int i = 0; i < 2; ++i) e = merge_suppression(e, failure("quota-issues", "f@example.net", kNow + i * kDay));
    CHECK(e->count == 2);
    CHECK_FALSE(e->active);
    e = merge_suppression(e, failure("quota-issues", "f@example.net", kNow + 9 * kDay));  // past 7 days
    CHECK(e->count == 1);
    CHECK(e->first_seen == kNow + 9 * kDay);
    CHECK_FALSE(e->active);
    // A hard failure after soft ones suppresses at once, counted from the first.
    e = merge_suppression(e, failure("bad-mailbox", "f@example.net", kNow + 10 * kDay));
    CHECK(e->active);
    CHECK(e->count == 2);
    CHECK(e->expires == kNow + 10 * kDay + 180 * kDay);
    // A full mailbox afterwards keeps the hard reason.
    auto kept = merge_suppression(e, failure("quota-issues", "f@example.net", kNow + 11 * kDay));
    CHECK(kept.category == "bad-mailbox");
    CHECK(kept.active);
    // An expired entry is a new one.
    auto fresh = merge_suppression(e, failure("bad-mailbox", "f@example.net", kNow + 400 * kDay));
    CHECK(fresh.count == 1);
    CHECK(fresh.first_seen == kNow + 400 * kDay);
}

TEST_CASE("suppression: the SQLite store", "[suppression]") {
    TempDb db;
    auto store = db.open();
    store_contract(*store, kNow);
    // Another connection (preflight-classify) sees what this one wrote, at once.
    std::string error;
    REQUIRE(store->record(failure("bad-mailbox", "x@example.net", kNow), &error));
    auto second = db.open();
    CHECK(second->lookup("example.org", "x@example.net", kNow).entry);
    REQUIRE(second->remove("example.org", "x@example.net", &error));
    CHECK_FALSE(store->lookup("example.org", "x@example.net", kNow).entry);
}

TEST_CASE("suppression: an SQLite file that cannot be opened is an error at open", "[suppression]") {
    CHECK_THROWS_AS(open_suppression_store({QuotaStoreSpec::Kind::sqlite, "/nonexistent-dir/s.db", "", 0, 0, {}, {}},
                                           std::chrono::milliseconds(100)),
                    std::runtime_error);
}

// The Redis of tests/unit/with_redis.sh (it requires AUTH; the ACL user may use pfq:* and pfs:*).
QuotaStoreSpec test_redis_spec() {
    const char* where = std::getenv("PREFLIGHT_TEST_REDIS");
    if (!where || !*where) FAIL("PREFLIGHT_TEST_REDIS is not set: run this case through tests/unit/with_redis.sh");
    auto spec = parse_quota_store(std::string("redis://") + where);
    REQUIRE(spec);
    return *spec;
}

TEST_CASE("suppression: the Redis store", "[.redis][suppression]") {
    // Logged in as the ACL user of SuppressionStorePasswordFile, whose keys are limited: every
    // key the store uses must be under pfs:.
    RedisCredentials user = test::test_redis_credentials();
    REQUIRE(user.user == "preflight");
    auto store = open_suppression_store(test_redis_spec(), std::chrono::milliseconds(1000), user);
    store_contract(*store, static_cast<std::int64_t>(std::time(nullptr)));
}

TEST_CASE("suppression: a Redis that requires AUTH refuses a missing or wrong password as a store error",
          "[.redis][suppression]") {
    const std::int64_t now = static_cast<std::int64_t>(std::time(nullptr));
    RedisCredentials user = test::test_redis_credentials();
    REQUIRE_FALSE(user.password.empty());
    std::string error;
    SECTION("no password: NOAUTH, for a lookup and a write alike") {
        auto store = open_suppression_store(test_redis_spec(), std::chrono::milliseconds(1000));
        SuppressionLookup l = store->lookup("example.org", "bob@example.net", now);
        CHECK_FALSE(l.ok);
        CHECK(l.error.find("NOAUTH") != std::string::npos);
        CHECK_FALSE(store->record(failure("bad-mailbox", "bob@example.net", now), &error));
        CHECK(error.find("NOAUTH") != std::string::npos);
    }
    SECTION("a wrong password: the node and the user, never the password or the file") {
        RedisCredentials wrong = user;
        wrong.password += "-wrong";
        auto store = open_suppression_store(test_redis_spec(), std::chrono::milliseconds(1000), wrong);
        SuppressionLookup l = store->lookup("example.org", "bob@example.net", now);
        CHECK_FALSE(l.ok);
        CHECK(l.error.find("Redis 127.0.0.1:") == 0);
        CHECK(l.error.find("AUTH as user preflight refused: WRONGPASS") != std::string::npos);
        CHECK(l.error.find(wrong.password) == std::string::npos);
        CHECK(l.error.find(wrong.file) == std::string::npos);
        // The next call within a second fails at once, with the same reason.
        CHECK_FALSE(store->put_trace("tok", "example.org", "bob@example.net", now + 60, &error));
        CHECK(error.find("AUTH as user preflight refused") != std::string::npos);
        CHECK(error.find(wrong.password) == std::string::npos);
    }
}

TEST_CASE("suppression: a Redis that does not answer is a store error, not a hang", "[suppression]") {
    // A port nothing listens on (connect refused at once); the timeout bounds the rest.
    auto store = open_suppression_store({QuotaStoreSpec::Kind::redis, "", "127.0.0.1", 1, 0, {}, {}},
                                        std::chrono::milliseconds(200));
    SuppressionLookup l = store->lookup("example.org", "bob@example.net", kNow);
    CHECK_FALSE(l.ok);
    CHECK_FALSE(l.error.empty());
    std::string error;
    CHECK_FALSE(store->record(failure("bad-mailbox", "bob@example.net", kNow), &error));
    CHECK_FALSE(error.empty());
}

TEST_CASE("suppression: a redis-sentinel:// store asks the sentinels, a bounded store error when none answers",
          "[suppression]") {
    // Nothing listens on port 1 (connect refused at once); the timeout bounds the rest.
    auto spec = parse_quota_store("redis-sentinel://127.0.0.1:1/mymaster");
    REQUIRE(spec);
    auto store = open_suppression_store(*spec, std::chrono::milliseconds(200));
    CHECK(store->describe() == "redis-sentinel://127.0.0.1:1/mymaster");
    SuppressionLookup l = store->lookup("example.org", "bob@example.net", kNow);
    CHECK_FALSE(l.ok);
    CHECK(l.error.find("sentinel 127.0.0.1:1") != std::string::npos);
    std::string error;
    CHECK_FALSE(store->put_trace("tok", "example.org", "bob@example.net", kNow + 60, &error));
    CHECK_FALSE(error.empty());
}

TEST_CASE("suppression: the RCPT TO reply names the reason, the scope and the date", "[suppression]") {
    SuppressionLookup l;
    SuppressionEntry e = merge_suppression(std::nullopt, failure("bad-mailbox", "bob@example.net", 1'793'664'000));
    l.entry = e;
    Verdict v = suppression_verdict(l, "bob@example.net", SuppressionStoreErrorAction::tempfail);
    CHECK(v.action == Verdict::Action::reject);
    std::string text = reply_text(render(v));
    CHECK(
        text.starts_with("550 5.1.1 <bob@example.net> is suppressed for example.org since 2026-11-03: the last "
                         "delivery failed with \"550 5.1.1 <bob@example.net>: user unknown\" (mx.example.net); "
                         "remove it from your list"));
    l.entry->scope = "*";
    l.entry->source = SuppressionSource::complaint;
    text = reply_text(render(suppression_verdict(l, "bob@example.net", SuppressionStoreErrorAction::tempfail)));
    CHECK(
        text.starts_with("550 5.7.1 <bob@example.net> is suppressed for every sender since 2026-11-03: its owner "
                         "reported a message as spam"));

    SuppressionLookup down;
    down.ok = false;
    down.error = "redis://127.0.0.1:1: Connection refused";
    Verdict t = suppression_verdict(down, "bob@example.net", SuppressionStoreErrorAction::tempfail);
    CHECK(t.action == Verdict::Action::tempfail);
    CHECK(reply_text(render(t)).starts_with("451 4.3.0 Suppression list cannot be checked at the moment"));
    Verdict a = suppression_verdict(down, "bob@example.net", SuppressionStoreErrorAction::accept);
    CHECK(a.accepted());
    CHECK(a.reply == ReplyId::suppression_unavailable);
}

TEST_CASE("suppression: remote text is printable ASCII and bounded", "[suppression][hostile]") {
    std::string hostile = "550\r\n5.1.1 %s\x00\x1b[31m" + std::string(5000, 'x');
    std::string clean = sanitise_remote_text(hostile);
    CHECK(clean.size() <= 200);
    for (char c : clean) CHECK((c >= 0x20 && c < 0x7f));
    CHECK(sanitise_remote_text("a   b\t\tc ") == "a b c");
}

TEST_CASE("suppression: trace tokens are keyed, stable and parsed back", "[suppression]") {
    std::string t = trace_token("0123456789abcdef-key", "Example.ORG", "bob@example.net");
    CHECK(t.size() == 32);
    CHECK(t == trace_token("0123456789abcdef-key", "example.org", "bob@example.net"));
    CHECK(t != trace_token("another-key-of-16-bytes", "example.org", "bob@example.net"));
    CHECK(t != trace_token("0123456789abcdef-key", "example.org", "carol@example.net"));
    CHECK(parse_trace_token(" " + t + "\r\n") == t);
    CHECK_FALSE(parse_trace_token("not-a-token"));
    CHECK(utc_time(1'793'664'000) == "2026-11-03T00:00:00Z");
    CHECK(parse_utc("2026-11-03") == 1'793'664'000);
    CHECK(parse_utc("2026-11-03T00:00:10Z") == 1'793'664'010);
    CHECK_FALSE(parse_utc("2026-13-03"));
}

TEST_CASE("suppression: SQLite deletes expired entries and trace tokens as it goes", "[suppression]") {
    TempDb db;
    auto store = db.open();
    std::string error;
    SuppressionRecord r = failure("bad-mailbox", "old@example.net", kNow);
    r.expiry = 10;
    REQUIRE(store->record(r, &error));
    REQUIRE(store->put_trace("0123456789abcdef0123456789abcdef", "example.org", "old@example.net", kNow + 10, &error));
    SuppressionFilter all;
    all.include_expired = all.include_pending = true;
    REQUIRE(store->list(all, kNow, &error)->size() == 1);
    // 1000 writes later, at a time both have expired by, they are gone, not only hidden.
    for (int i = 0; i < 998; ++i) {
        std::string recipient = "u";
        recipient.append(std::to_string(i)).append("@example.net");
        REQUIRE(store->record(failure("bad-mailbox", recipient, kNow + 100), &error));
    }
    auto left = store->list(all, kNow + 100, &error);
    REQUIRE(left);
    CHECK(left->size() == 998);
    for (const SuppressionEntry& e : *left) CHECK(e.recipient != "old@example.net");
    CHECK_FALSE(store->find_trace("0123456789abcdef0123456789abcdef", kNow, &error));
}
