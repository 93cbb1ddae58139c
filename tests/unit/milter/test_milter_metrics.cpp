// MilterMetrics: decisions counted by check, result and the reply code the log shows.
#include <catch2/catch.hpp>

#include <string>

#include "milter_metrics.hpp"
#include "reply_table.hpp"

using namespace preflight;

TEST_CASE("milter metrics: decisions by check, result and reply code", "[metrics]") {
    MilterMetrics m;
    m.count_decision(Verdict::accept("all"));
    m.count_decision(Verdict::accept("all"));
    Verdict size = Verdict::reject(check_name::size, ReplyId::size_too_big, {});
    m.count_decision(size);
    // Mode tempfail: the 4xx twin.
    m.count_decision(apply_mode(size, CheckMode::tempfail, false));
    // Dry-run: counted as dry-run with the code it would have sent.
    Verdict auth = Verdict::reject(check_name::auth, ReplyId::auth_failed, {});
    m.count_decision(apply_mode(auth, CheckMode::reject, true));
    m.count_decision(apply_mode(auth, CheckMode::tag, false));
    m.count_decision(Verdict::tempfail("shutdown", ReplyId::shutting_down, {}));
    m.count_decision(Verdict::tempfail("made-up", ReplyId::internal_temp_failure, {}));

    CHECK(m.decisions("all", "accept", 250) == 2);
    CHECK(m.decisions("size", "reject", 552) == 1);
    CHECK(m.decisions("size", "tempfail", 452) == 1);
    CHECK(m.decisions("auth", "dry-run", 550) == 1);
    CHECK(m.decisions("auth", "tag", 550) == 1);
    CHECK(m.decisions("shutdown", "tempfail", 451) == 1);
    CHECK(m.decisions("other", "tempfail", 451) == 1);
    CHECK(m.decisions("auth", "reject", 550) == 0);

    metrics::Registry r;
    m.register_with(r, [] { return 7.0; });
    const std::string text = r.render();
    CHECK(text.find("# TYPE preflight_milter_decisions_total counter\n") != std::string::npos);
    CHECK(text.find("preflight_milter_decisions_total{check=\"all\",result=\"accept\",code=\"250\"} 2\n") !=
          std::string::npos);
    CHECK(text.find("preflight_milter_decisions_total{check=\"size\",result=\"tempfail\",code=\"452\"} 1\n") !=
          std::string::npos);
    CHECK(text.find("preflight_milter_decisions_total{check=\"auth\",result=\"dry-run\",code=\"550\"} 1\n") !=
          std::string::npos);
    // Combinations never seen are left out.
    CHECK(text.find("check=\"envelope\"") == std::string::npos);
    CHECK(text.find("preflight_milter_transactions 0\n") != std::string::npos);
    CHECK(text.find("preflight_milter_reloads_total{result=\"failed\"} 0\n") != std::string::npos);
    CHECK(text.find("preflight_dns_cache_entries 7\n") != std::string::npos);
}

TEST_CASE("reply_code is render's code", "[metrics]") {
    for (const ReplyRow& row : reply_table()) {
        for (CheckMode mode : {CheckMode::reject, CheckMode::tempfail, CheckMode::tag}) {
            for (bool dry : {false, true}) {
                Verdict v = row.code / 100 == 4 ? Verdict::tempfail("x", row.id, {}) : Verdict::reject("x", row.id, {});
                if (row.id == ReplyId::none) v = Verdict::accept("x");
                v = apply_mode(v, mode, dry);
                INFO(to_string(row.id));
                CHECK(reply_code(v) == render(v).code);
            }
        }
    }
}
