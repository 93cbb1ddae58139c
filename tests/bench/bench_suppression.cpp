// bench_suppression [ENTRIES [LOOKUPS]]: what the suppression list costs at RCPT TO, with
// ENTRIES (default 1,000,000) entries in an SQLite store (a temp file, removed at the end).
//
// Prints per-call wall time percentiles (p50, p90, p99, p99.9, max) of
//   lookup    SuppressionStore::lookup() alone, half of the recipients on the list
//   rcpt on   MessageSession::rcpt_to() with SuppressionMode reject (the recipients not listed)
//   rcpt off  the same recipients with SuppressionMode off
// and "added at RCPT TO p99" = rcpt on p99 - rcpt off p99. Each measurement is one call timed
// with steady_clock; the recipients are fixed (no randomness): recipient i of the list is
// "user<i>@dest<i % 1000>.example". Exit 1 when the store cannot be filled or a lookup fails
// or finds the wrong answer (a figure is printed only for a run that looked up correctly).
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <iostream>
#include <string>
#include <vector>

#include "dns.hpp"
#include "message_session.hpp"
#include "suppression.hpp"

using namespace preflight;
using Clock = std::chrono::steady_clock;

namespace {

// A resolver that is never asked: every DNS check is off in the bench conf.
class NoDns final : public Resolver {
public:
    std::shared_ptr<const DnsAnswer> query(std::string_view, std::uint16_t) override {
        return std::make_shared<DnsAnswer>();
    }
};

std::string recipient(std::size_t i) {
    std::string r = "user";
    r.append(std::to_string(i)).append("@dest").append(std::to_string(i % 1000)).append(".example");
    return r;
}

void print_percentiles(const char* what, std::vector<double>& ns) {
    std::sort(ns.begin(), ns.end());
    auto at = [&](double q) { return ns[std::min(ns.size() - 1, static_cast<std::size_t>(q * ns.size()))] / 1000.0; };
    std::printf("%-9s n=%zu  p50 %.2f us  p90 %.2f us  p99 %.2f us  p99.9 %.2f us  max %.1f us\n", what, ns.size(),
                at(0.50), at(0.90), at(0.99), at(0.999), ns.back() / 1000.0);
}

bool fill(SuppressionStore& store, std::size_t entries, std::int64_t now) {
    std::vector<SuppressionEntry> batch;
    std::string error;
    for (std::size_t i = 0; i < entries; ++i) {
        batch.push_back({"shop" + std::to_string(i % 100) + ".example", recipient(i), "bad-mailbox",
                         "550 5.1.1 user unknown", "mx.example.net", SuppressionSource::log, now, now, 1,
                         now + 86400 * 180, true});
        if (batch.size() == 50'000 || i + 1 == entries) {
            if (!store.put_many(batch, &error)) {
                std::cerr << "bench_suppression: fill: " << error << "\n";
                return false;
            }
            batch.clear();
        }
    }
    return true;
}

}  // namespace

int main(int argc, char** argv) {
    const std::size_t entries = argc > 1 ? std::stoul(argv[1]) : 1'000'000;
    const std::size_t lookups = argc > 2 ? std::stoul(argv[2]) : 200'000;
    const std::int64_t now = 1'796'000'000;
    const std::string db =
        (std::filesystem::temp_directory_path() / ("bench-suppression-" + std::to_string(getpid()) + ".db")).string();
    struct Cleanup {
        std::string db;
        ~Cleanup() {
            for (const char* s : {"", "-wal", "-shm"}) std::filesystem::remove(db + s);
        }
    } cleanup{db};

    auto store = open_suppression_store(*parse_quota_store("sqlite:" + db), std::chrono::milliseconds(1000));
    auto t0 = Clock::now();
    if (!fill(*store, entries, now)) return 1;
    std::printf("filled %zu entries in %.1f s (%s)\n", entries,
                std::chrono::duration<double>(Clock::now() - t0).count(), db.c_str());

    // Lookups: even i on the list (under its scope), odd i not (an index past the entries).
    std::vector<double> lookup_ns;
    lookup_ns.reserve(lookups);
    for (std::size_t n = 0; n < lookups; ++n) {
        std::size_t i = (n * 7919) % entries;
        bool listed = n % 2 == 0;
        std::string r = listed ? recipient(i) : recipient(entries + i);
        std::string scope = "shop" + std::to_string(i % 100) + ".example";
        auto a = Clock::now();
        SuppressionLookup l = store->lookup(scope, r, now);
        auto b = Clock::now();
        if (!l.ok || l.entry.has_value() != listed) {
            std::cerr << "bench_suppression: wrong lookup for " << r << ": " << l.error << "\n";
            return 1;
        }
        lookup_ns.push_back(std::chrono::duration<double, std::nano>(b - a).count());
    }
    print_percentiles("lookup", lookup_ns);

    NoDns dns;
    std::vector<double> per_mode[2];
    for (int on = 0; on < 2; ++on) {
        auto parsed = parse_config_text("bench.conf", std::string("EgressAddresses 127.0.0.1\nAuthPolicy off\n"
                                                                  "SenderDomainMode off\nSuppressionMode ") +
                                                          (on ? "reject\n" : "off\n"));
        if (!parsed.ok()) return 1;
        MilterServices services;
        services.config = parsed.config;
        services.resolver = &dns;
        services.egress_ips = {"127.0.0.1"};
        services.suppression_store = store.get();
        services.now_ms = [now] { return now * 1000; };
        std::vector<double>& ns = per_mode[on];
        ns.reserve(lookups);
        for (std::size_t n = 0; n < lookups; n += 50) {
            MessageSession s(services);
            if (!s.mail_from("<sender@shop1.example>", {}).accepted()) return 1;
            for (std::size_t k = n; k < std::min(lookups, n + 50); ++k) {
                std::string r(1, '<');
                r.append(recipient(entries + k)).push_back('>');
                auto a = Clock::now();
                Verdict v = s.rcpt_to(r);
                auto b = Clock::now();
                if (!v.accepted()) {
                    std::cerr << "bench_suppression: " << r << " refused: " << reply_text(render(v)) << "\n";
                    return 1;
                }
                ns.push_back(std::chrono::duration<double, std::nano>(b - a).count());
            }
        }
    }
    print_percentiles("rcpt off", per_mode[0]);
    print_percentiles("rcpt on", per_mode[1]);
    double p99_on = per_mode[1][std::min(per_mode[1].size() - 1, per_mode[1].size() * 99 / 100)];
    double p99_off = per_mode[0][std::min(per_mode[0].size() - 1, per_mode[0].size() * 99 / 100)];
    std::printf("added at RCPT TO p99: %.2f us (entries %zu)\n", (p99_on - p99_off) / 1000.0, entries);
    return 0;
}
