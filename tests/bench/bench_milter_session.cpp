// CPU cost of one transaction through MessageSession (MAIL FROM, 5 RCPT, headers, a 3 kB body,
// end of message) with every check on and DNS answered from the cache: the milter's own work
// per message, without libmilter or an MTA; and the same with the message checks on.
// Run: build/tests/bench_milter_session
#include <benchmark/benchmark.h>

#include <map>

#include "bench_main.hpp"
#include "dns_cache.hpp"
#include "bench_services.hpp"
#include "message_session.hpp"
#include "zone_resolver.hpp"

using namespace preflight;

namespace {

void BM_Transaction(benchmark::State& state) {
    ZoneResolver zone;
    CachingResolver cache(zone, 10000);
    MilterServices services = bench_services(state, cache, "EgressAddresses 127.0.0.1\n");
    if (!services.config) return;
    const std::string body(3000, 'x');
    for (auto _ : state) {
        MessageSession s(services);
        benchmark::DoNotOptimize(s.mail_from("<sender@good.test>", {"SIZE=3500"}));
        for (int r = 0; r < 5; ++r) benchmark::DoNotOptimize(s.rcpt_to("<rcpt@example.test>"));
        s.header("From", "sender@good.test");
        s.header("To", "rcpt@example.test");
        s.header("Subject", "bench");
        s.end_of_headers();
        benchmark::DoNotOptimize(s.body(body));
        benchmark::DoNotOptimize(s.end_of_message());
    }
    state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_Transaction);

// good.test's zone plus its DMARC record, for the message checks.
class DmarcZoneResolver : public ZoneResolver {
public:
    std::shared_ptr<const DnsAnswer> query(std::string_view name, std::uint16_t type) override {
        if (name != "_dmarc.good.test" || type != rrtype::TXT) return ZoneResolver::query(name, type);
        auto a = std::make_shared<DnsAnswer>();
        a->status = DnsStatus::ok;
        a->ttl = 3600;
        a->records = {"v=DMARC1; p=reject; rua=mailto:dmarc@good.test"};
        return a;
    }
};

// The same transaction with the message checks on (header sanity, DMARC record,
// alignment, one-click unsubscribe) on a bulk message that passes them all: the difference to
// BM_Transaction is their cost per message, DNS cached.
void BM_TransactionMessageChecks(benchmark::State& state) {
    DmarcZoneResolver zone;
    CachingResolver cache(zone, 10000);
    MilterServices services = bench_services(state, cache,
                                             "EgressAddresses 127.0.0.1\nDmarcMode reject\nAlignmentMode reject\n"
                                             "UnsubscribeMode reject\nHeaderSanityMode reject\n");
    if (!services.config) return;
    const std::string body(3000, 'x');
    for (auto _ : state) {
        MessageSession s(services);
        benchmark::DoNotOptimize(s.mail_from("<sender@good.test>", {"SIZE=3500"}));
        for (int r = 0; r < 5; ++r) benchmark::DoNotOptimize(s.rcpt_to("<rcpt@example.test>"));
        s.header("From", " Good News <sender@good.test>");
        s.header("To", " rcpt@example.test");
        s.header("Subject", " bench");
        s.header("Date", " Mon, 07 Dec 2026 10:00:00 +0000");
        s.header("Message-ID", " <bench.1@good.test>");
        s.header("List-Id", " <news.good.test>");
        s.header("List-Unsubscribe", " <https://good.test/u?id=1>");
        s.header("List-Unsubscribe-Post", " List-Unsubscribe=One-Click");
        s.end_of_headers();
        benchmark::DoNotOptimize(s.body(body));
        Verdict v = s.end_of_message();
        if (!v.accepted()) {
            state.SkipWithError("the bench message was refused");
            return;
        }
    }
    state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_TransactionMessageChecks);

}  // namespace

PREFLIGHT_BENCHMARK_MAIN()
