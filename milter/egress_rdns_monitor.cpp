// EgressRdnsMonitor (see egress_rdns_monitor.hpp).
#include "egress_rdns_monitor.hpp"

#include "logger.hpp"

namespace preflight {

EgressRdnsMonitor::EgressRdnsMonitor() = default;

EgressRdnsMonitor::~EgressRdnsMonitor() { stop(); }

void EgressRdnsMonitor::stop() {
    {
        std::lock_guard lock(mutex_);
        stopping_ = true;
    }
    wake_.notify_all();
    if (thread_.joinable()) thread_.join();
}

void EgressRdnsMonitor::configure(std::shared_ptr<Resolver> resolver, std::vector<IpAddress> addresses,
                                  std::chrono::milliseconds interval) {
    {
        std::lock_guard lock(mutex_);
        resolver_ = std::move(resolver);
        addresses_ = std::move(addresses);
        interval_ = interval;
        reconfigured_ = true;
        if (!thread_.joinable()) thread_ = std::thread([this] { run(); });
    }
    wake_.notify_all();
}

std::vector<EgressRdns> EgressRdnsMonitor::results() const {
    std::lock_guard lock(mutex_);
    return results_;
}

unsigned EgressRdnsMonitor::checks_done() const {
    std::lock_guard lock(mutex_);
    return checks_done_;
}

// Waits for the first configuration; then checks, and sleeps until the interval passes, a
// reload asks for a check now, or the stop.
void EgressRdnsMonitor::run() {
    std::unique_lock lock(mutex_);
    wake_.wait(lock, [this] { return stopping_ || reconfigured_; });
    while (!stopping_) {
        reconfigured_ = false;
        std::shared_ptr<Resolver> resolver = resolver_;
        std::vector<IpAddress> addresses = addresses_;
        lock.unlock();
        std::vector<EgressRdns> found;
        if (resolver && !addresses.empty()) {
            found = check_egress_rdns(*resolver, addresses);
            for (const EgressRdns& r : found)
                Logger::log(r.result == FcrdnsResult::confirmed ? Logger::Level::info : Logger::Level::warning,
                            describe(r));
        }
        lock.lock();
        results_ = std::move(found);
        ++checks_done_;
        wake_.wait_for(lock, interval_, [this] { return stopping_ || reconfigured_; });
    }
}

void EgressRdnsMonitor::register_with(metrics::Registry& r) const {
    r.add_samples(
        "preflight_egress_fcrdns",
        "Forward-confirmed reverse DNS of each EgressAddresses address at the last check: 1 confirmed, "
        "0 not (result says why: no_ptr, not_confirmed, dns_error, not_checked).",
        metrics::Type::gauge, [this](std::vector<metrics::Sample>& out) {
            std::lock_guard lock(mutex_);
            for (const EgressRdns& e : results_)
                out.push_back({{{"address", e.address.to_string()}, {"result", std::string(to_string(e.result))}},
                               e.result == FcrdnsResult::confirmed ? 1.0 : 0.0});
        });
}

}  // namespace preflight
