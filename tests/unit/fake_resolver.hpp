// A Resolver for unit tests: answers from a map of (name, type), counts queries; a name
// not in the map is NXDOMAIN. Shared by the check and session tests.
#pragma once

#include <map>
#include <memory>
#include <span>
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

// A FakeResolver that records each query_all batch ("name/type" per question) and each query
// made outside a batch; its answers carry a TTL, so a CachingResolver in front keeps them.
class BatchRecordingResolver : public FakeResolver {
public:
    std::vector<std::vector<std::string>> batches;
    std::vector<std::string> single;  // queries outside any batch

    std::shared_ptr<const DnsAnswer> query(std::string_view name, std::uint16_t type) override {
        if (!in_batch_) single.push_back(std::string(name) + "/" + std::to_string(type));
        auto a = std::make_shared<DnsAnswer>(*FakeResolver::query(name, type));
        a->ttl = 300;
        return a;
    }
    std::vector<std::shared_ptr<const DnsAnswer>> query_all(std::span<const DnsQuestion> qs) override {
        std::vector<std::string> names;
        for (const DnsQuestion& q : qs) names.push_back(q.name + "/" + std::to_string(q.type));
        batches.push_back(std::move(names));
        in_batch_ = true;
        auto answers = FakeResolver::query_all(qs);
        in_batch_ = false;
        return answers;
    }

private:
    bool in_batch_ = false;
};

}  // namespace preflight
