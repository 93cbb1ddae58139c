// EgressRdnsMonitor: the forward-confirmed reverse DNS of EgressAddresses (egress_rdns.hpp),
// watched for as long as the milter runs. configure() (at start and on every reload) checks at
// once on the monitor's own thread, then every EgressRdnsInterval; each check logs one line
// per address (info when confirmed, warning otherwise: the line says what to fix) and updates
// the gauge preflight_egress_fcrdns{address,result} (1 when confirmed, else 0). It never
// refuses a message. Lookups go through the milter's caching resolver, so a periodic check
// within a record's TTL reads the cache.
#pragma once

#include <chrono>
#include <condition_variable>
#include <memory>
#include <mutex>
#include <thread>
#include <vector>

#include "config.hpp"
#include "dns.hpp"
#include "egress_rdns.hpp"
#include "metrics.hpp"

namespace preflight {

class EgressRdnsMonitor {
public:
    // The thread starts with the first configure() (after the daemon forked, with its signal mask).
    EgressRdnsMonitor();
    // stop()s.
    ~EgressRdnsMonitor();
    EgressRdnsMonitor(const EgressRdnsMonitor&) = delete;
    EgressRdnsMonitor& operator=(const EgressRdnsMonitor&) = delete;

    // What to check from now on; checks at once. No addresses: nothing checked, no series.
    void configure(std::shared_ptr<Resolver> resolver, std::vector<IpAddress> addresses,
                   std::chrono::milliseconds interval);
    // The results of the last complete check (empty before the first one ends).
    std::vector<EgressRdns> results() const;
    // Checks completed so far (for tests and the log).
    unsigned checks_done() const;

    void register_with(metrics::Registry& r) const;
    // Ends the thread; a check in flight ends first (bounded by twice DnsTimeout). Idempotent.
    void stop();

private:
    void run();

    mutable std::mutex mutex_;
    std::condition_variable wake_;
    bool stopping_ = false, reconfigured_ = false;
    std::shared_ptr<Resolver> resolver_;
    std::vector<IpAddress> addresses_;
    std::chrono::milliseconds interval_{3600'000};
    std::vector<EgressRdns> results_;
    unsigned checks_done_ = 0;
    std::thread thread_;  // started by the first configure()
};

}  // namespace preflight
