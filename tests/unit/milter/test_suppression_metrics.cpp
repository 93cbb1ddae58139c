// /metrics of the suppression list: hits by scope and store errors counted in the milter; entries
// by reason, adds by source and sender faults by domain read from the store at scrape time. No
// series names a recipient.
#include <catch2/catch.hpp>

#include <unistd.h>

#include <filesystem>

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
