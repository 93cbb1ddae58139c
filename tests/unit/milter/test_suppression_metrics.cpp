// /metrics of the suppression list: hits by scope and store errors counted in the milter; entries
// by reason, adds by source and sender faults by domain read from the store at scrape time. No
// series names a recipient. And the service that opens the store: kept across a reload unless
// the store or its credentials changed.
#include <catch2/catch.hpp>

#include <unistd.h>

#include <filesystem>
#include <fstream>

#include "metrics.hpp"
#include "milter_suppression.hpp"

using namespace preflight;

TEST_CASE("suppression metrics: from the counters and from the store", "[suppression][metrics]") {
    const std::string db =
        (std::filesystem::temp_directory_path() / ("preflight-suppression-metrics-" + std::to_string(getpid()) + ".db"))
            .string();
    std::shared_ptr<SuppressionStore> store =
        open_suppression_store({QuotaStoreSpec::Kind::sqlite, db, "", 0, 0, {}, {}}, std::chrono::milliseconds(500));
    const auto now = static_cast<std::int64_t>(std::time(nullptr));
    SuppressionRecord r;
    r.entry = {"shop.example",
               "dead@dest.example",
               "bad-mailbox",
               "550 5.1.1 user unknown",
               "mx",
               SuppressionSource::log,
               0,
               0,
               0,
               0,
               false};
    r.now = now;
    r.expiry = 86400;
    std::string error;
    REQUIRE(store->record(r, &error));
    REQUIRE(store->count_sender_fault("shop.example", "spam-related", &error));

    SuppressionCounters counters;
    counters.hits_domain.inc(3);
    counters.store_errors.inc();
    metrics::Registry registry;
    register_suppression_metrics(registry, counters, [store] { return store; });
    std::string text = registry.render();
    CHECK(text.find("preflight_suppression_hits_total{scope=\"domain\"} 3\n") != std::string::npos);
    CHECK(text.find("preflight_suppression_hits_total{scope=\"global\"} 0\n") != std::string::npos);
    CHECK(text.find("preflight_suppression_store_errors_total 1\n") != std::string::npos);
    CHECK(text.find("preflight_suppression_entries{reason=\"bad-mailbox\"} 1\n") != std::string::npos);
    CHECK(text.find("preflight_suppression_adds_total{source=\"log\"} 1\n") != std::string::npos);
    CHECK(
        text.find(
            "preflight_suppression_sender_faults_total{sender_domain=\"shop.example\",category=\"spam-related\"} 1\n") !=
        std::string::npos);
    CHECK(text.find("dead@dest.example") == std::string::npos);
    store.reset();
    for (const char* s : {"", "-wal", "-shm"}) std::filesystem::remove(db + s);
}

TEST_CASE("suppression service: a reload keeps the store unless the store or its credentials changed",
          "[suppression]") {
    // redis:// connects lazily, so nothing needs to listen on port 1.
    const std::filesystem::path dir =
        std::filesystem::temp_directory_path() / ("preflight-suppression-reload-" + std::to_string(getpid()));
    std::filesystem::create_directories(dir);
    const std::string pass = (dir / "redis.pass").string();
    auto write_pass = [&](const char* text) {
        std::ofstream(pass, std::ios::trunc) << text;
        std::filesystem::permissions(pass, std::filesystem::perms::owner_read | std::filesystem::perms::owner_write);
    };
    auto load = [&] {
        auto r = parse_config_text("r.conf",
                                   "EgressAddresses 192.0.2.1\nSuppressionMode reject\n"
                                   "SuppressionStore redis://127.0.0.1:1\nSuppressionStorePasswordFile " +
                                       pass + "\n");
        for (const auto& e : r.errors) UNSCOPED_INFO(e.to_string());
        REQUIRE(r.ok());
        return r.config;
    };
    write_pass("preflight:first\n");
    SuppressionService first = open_suppression_service(*load(), nullptr);
    REQUIRE(first.store);
    CHECK(first.credentials.password == "first");
    SuppressionService same = open_suppression_service(*load(), &first);
    CHECK(same.store == first.store);  // nothing changed: the open connection is kept
    write_pass("preflight:rotated\n");
    SuppressionService rotated = open_suppression_service(*load(), &same);
    CHECK(rotated.store != first.store);  // a new password needs a new login
    CHECK(rotated.credentials.password == "rotated");
    std::filesystem::remove_all(dir);
}
