// A Resolver that answers like an authoritative server for good.test (MX, SPF for loopback);
// every other name is NXDOMAIN. Shared by the milter benchmarks, so they measure the same DNS.
#pragma once

#include <memory>
#include <string>
#include <string_view>

#include "dns.hpp"

namespace preflight {

class ZoneResolver : public Resolver {
public:
    std::shared_ptr<const DnsAnswer> query(std::string_view name, std::uint16_t type) override {
        auto a = std::make_shared<DnsAnswer>();
        a->status = DnsStatus::ok;
        a->ttl = 3600;
        std::string n(name);
        if (n == "good.test" && type == rrtype::MX) {
            a->records = {"10 mx.good.test"};
            a->mx = {{10, "mx.good.test"}};
        } else if (n == "good.test" && type == rrtype::TXT) {
            a->records = {"v=spf1 ip4:127.0.0.0/8 -all"};
        } else if (n != "good.test" && n != "mx.good.test") {
            a->status = DnsStatus::nxdomain;
        }
        return a;
    }
};

}  // namespace preflight
