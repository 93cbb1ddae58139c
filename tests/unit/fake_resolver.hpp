// A Resolver for unit tests: answers from a map of (name, type), counts queries; a name
// not in the map is NXDOMAIN. Shared by the check and session tests.
#pragma once

#include <map>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "dns.hpp"

namespace preflight {

// Answers from a map; unknown names are NXDOMAIN. Counts queries.
class FakeResolver : public Resolver {
public:
    std::map<std::pair<std::string, std::uint16_t>, DnsAnswer> answers;
    int queries = 0;
    std::vector<std::string> asked;  // every query's name, in order

    void set(const std::string& name, std::uint16_t type, DnsStatus st, std::vector<std::string> records = {},
             std::vector<MxRecord> mx = {}, double ms = 1.5) {
        DnsAnswer a;
        a.status = st;
        a.records = std::move(records);
        a.mx = std::move(mx);
        a.elapsed_ms = ms;
        answers[{name, type}] = std::move(a);
    }

    std::shared_ptr<const DnsAnswer> query(std::string_view name, std::uint16_t type) override {
        ++queries;
        asked.emplace_back(name);
        auto it = answers.find({std::string(name), type});
        if (it == answers.end()) {
            DnsAnswer nx;
            nx.status = DnsStatus::nxdomain;
            nx.elapsed_ms = 1.5;
            return std::make_shared<const DnsAnswer>(nx);
        }
        return std::make_shared<const DnsAnswer>(it->second);
    }
};

}  // namespace preflight
