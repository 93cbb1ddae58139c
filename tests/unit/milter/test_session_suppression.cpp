// MessageSession and the suppression list: a suppressed recipient is refused at RCPT TO with the
// reason while the others go on, per SuppressionMode; a store that does not answer gives
// OnSuppressionStoreError's outcome; removal takes effect on the next RCPT TO; a single-recipient
// message carries the trace header.
#include <catch2/catch.hpp>

#include <unistd.h>

#include <filesystem>

#include "fake_resolver.hpp"
#include "message_session.hpp"
#include "trace_header.hpp"

using namespace preflight;

namespace {

constexpr std::int64_t kNow = 1'796'000'000;

struct Fixture {
    FakeResolver dns;
    MilterServices services;
    std::filesystem::path db;
    std::unique_ptr<SuppressionStore> store;
    SuppressionCounters counters;

    explicit Fixture(const std::string& extra_conf = "", bool down = false) {
        dns.set("good.test", rrtype::MX, DnsStatus::ok, {"10 mx.good.test"}, {{10, "mx.good.test"}});
        dns.set("other.test", rrtype::MX, DnsStatus::ok, {"10 mx.other.test"}, {{10, "mx.other.test"}});
        auto parsed = parse_config_text(
            "t.conf", "EgressAddresses 127.0.0.1\nAuthPolicy off\nSuppressionMode reject\n" + extra_conf);
        for (const auto& e : parsed.errors) UNSCOPED_INFO(e.to_string());
        REQUIRE(parsed.ok());
        services.config = parsed.config;
        services.resolver = &dns;
        services.egress_ips = {"127.0.0.1"};
        services.now_ms = [] { return kNow * 1000; };
        db = std::filesystem::temp_directory_path() /
             ("preflight-session-suppression-" + std::to_string(getpid()) + "-" +
              std::to_string(std::chrono::steady_clock::now().time_since_epoch().count()) + ".db");
        if (down)
            store = open_suppression_store({QuotaStoreSpec::Kind::redis, "", "127.0.0.1", 1, 0, {}, {}},
                                           std::chrono::milliseconds(200));
        else
            store = open_suppression_store({QuotaStoreSpec::Kind::sqlite, db.string(), "", 0, 0, {}, {}},
                                           std::chrono::milliseconds(500));
        services.suppression_store = store.get();
        services.suppression_counters = &counters;
    }
    ~Fixture() {
        store.reset();
        for (const char* suffix : {"", "-wal", "-shm"}) std::filesystem::remove(db.string() + suffix);
    }
    void suppress(std::string_view recipient, std::string_view scope = "good.test") {
        SuppressionRecord r;
        r.entry = {std::string(scope),
                   std::string(recipient),
                   "bad-mailbox",
                   "550 5.1.1 user unknown",
                   "mx.example.net",
                   SuppressionSource::log,
                   0,
                   0,
                   0,
                   0,
                   false};
        r.now = kNow - 86400;
        r.expiry = 180 * 86400;
        std::string error;
        REQUIRE(store->record(r, &error));
    }
};

}  // namespace

TEST_CASE("session: a suppressed recipient is refused with its reason, the others go on", "[session][suppression]") {
    Fixture f;
    f.suppress("dead@example.net");
    MessageSession s(f.services);
    REQUIRE(s.mail_from("<alice@good.test>", {}).accepted());
    CHECK(s.rcpt_to("<live@example.net>").accepted());
    Verdict v = s.rcpt_to("<Dead@Example.NET>");
    CHECK(v.action == Verdict::Action::reject);
    CHECK(
        reply_text(render(v)).starts_with("550 5.1.1 <Dead@Example.NET> is suppressed for good.test since 2026-11-29: "
                                          "the last delivery failed with \"550 5.1.1 user unknown\" (mx.example.net)"));
    CHECK(s.rcpt_to("<other@example.net>").accepted());
    CHECK(s.accepted_recipients() == 2);
    CHECK(s.end_of_message().accepted());
    CHECK(f.counters.hits_domain.value() == 1);

    // Scope: another sender domain is not refused.
    MessageSession o(f.services);
    REQUIRE(o.mail_from("<carol@other.test>", {}).accepted());
    CHECK(o.rcpt_to("<dead@example.net>").accepted());
}

TEST_CASE("session: removal takes effect on the next RCPT TO", "[session][suppression]") {
    Fixture f;
    f.suppress("dead@example.net");
    MessageSession s(f.services);
    REQUIRE(s.mail_from("<alice@good.test>", {}).accepted());
    CHECK_FALSE(s.rcpt_to("<dead@example.net>").accepted());
    std::string error;
    REQUIRE(f.store->remove("good.test", "dead@example.net", &error) == std::optional<std::size_t>(1));
    CHECK(s.rcpt_to("<dead@example.net>").accepted());
}

TEST_CASE("session: SuppressionMode tag, dry-run and off", "[session][suppression]") {
    Fixture f(
        "Domain tagged.test SuppressionMode tag\nDomain dry.test SuppressionMode dry-run\n"
        "Domain off.test SuppressionMode off\n");
    for (const char* d : {"tagged.test", "dry.test", "off.test"}) {
        f.dns.set(d, rrtype::MX, DnsStatus::ok, {"10 mx"}, {{10, "mx"}});
        f.suppress("dead@example.net", d);
    }
    {
        MessageSession s(f.services);
        REQUIRE(s.mail_from("<a@tagged.test>", {}).accepted());
        CHECK(s.rcpt_to("<dead@example.net>").accepted());  // the stage's verdict; the tag is kept
        CHECK(s.end_of_message().accepted());
        REQUIRE(s.tag_headers().size() == 1);
        CHECK(s.tag_headers()[0].name == "X-Preflight-Suppression");
    }
    {
        MessageSession s(f.services);
        REQUIRE(s.mail_from("<a@dry.test>", {}).accepted());
        CHECK(s.rcpt_to("<dead@example.net>").accepted());
        auto notes = s.take_notes();
        REQUIRE(notes.size() == 1);
        CHECK(notes[0].dry_run);
        CHECK(notes[0].would == Verdict::Action::reject);
        CHECK(notes[0].reply == ReplyId::recipient_suppressed);
        CHECK(s.tag_headers().empty());
    }
    {
        MessageSession s(f.services);
        REQUIRE(s.mail_from("<a@off.test>", {}).accepted());
        CHECK(s.rcpt_to("<dead@example.net>").action == Verdict::Action::accept);
        CHECK(s.take_notes().empty());
    }
}

TEST_CASE("session: a suppression store that does not answer", "[session][suppression]") {
    SECTION("tempfail by default: 451 4.3.0, the client retries, nothing is lost") {
        Fixture f("", true);
        MessageSession s(f.services);
        REQUIRE(s.mail_from("<alice@good.test>", {}).accepted());
        Verdict v = s.rcpt_to("<bob@example.net>");
        CHECK(v.action == Verdict::Action::tempfail);
        CHECK(reply_text(render(v)).starts_with("451 4.3.0 Suppression list cannot be checked at the moment"));
        CHECK(f.counters.store_errors.value() == 1);
    }
    SECTION("accept: the recipient goes on unchecked, logged") {
        Fixture f("OnSuppressionStoreError accept\n", true);
        MessageSession s(f.services);
        REQUIRE(s.mail_from("<alice@good.test>", {}).accepted());
        CHECK(s.rcpt_to("<bob@example.net>").action == Verdict::Action::accept);
        auto notes = s.take_notes();
        REQUIRE(notes.size() == 1);
        CHECK(notes[0].reply == ReplyId::suppression_unavailable);
    }
}

TEST_CASE("session: a single-recipient message carries the trace header", "[session][suppression]") {
    Fixture f;
    f.services.trace_key = "a-trace-key-of-32-bytes-........";
    {
        MessageSession s(f.services);
        REQUIRE(s.mail_from("<alice@good.test>", {}).accepted());
        REQUIRE(s.rcpt_to("<Bob@Example.net>").accepted());
        REQUIRE(s.end_of_message().accepted());
        REQUIRE(s.tag_headers().size() == 1);
        CHECK(s.tag_headers()[0].name == "X-Preflight-Trace");
        std::string token = s.tag_headers()[0].value;
        CHECK(token == trace_token(f.services.trace_key, "good.test", "bob@example.net"));
        std::string error;
        auto found = f.store->find_trace(token, kNow, &error);
        REQUIRE(found);
        CHECK(found->first == "good.test");
        CHECK(found->second == "bob@example.net");
    }
    {
        MessageSession s(f.services);
        REQUIRE(s.mail_from("<alice@good.test>", {}).accepted());
        REQUIRE(s.rcpt_to("<bob@example.net>").accepted());
        REQUIRE(s.rcpt_to("<carol@example.net>").accepted());
        REQUIRE(s.end_of_message().accepted());
        CHECK(s.tag_headers().empty());  // which of the two complained could not be told
    }
}
