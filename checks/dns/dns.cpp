#include "dns.hpp"

namespace preflight {

std::vector<std::shared_ptr<const DnsAnswer>> Resolver::query_all(std::span<const DnsQuestion> questions) {
    std::vector<std::shared_ptr<const DnsAnswer>> answers;
    answers.reserve(questions.size());
    for (const DnsQuestion& q : questions) {
        auto a = query(q.name, q.type);
        answers.push_back(a ? std::move(a) : std::make_shared<const DnsAnswer>());  // null: bad_answer
    }
    return answers;
}

std::string_view to_string(DnsStatus s) {
    switch (s) {
    case DnsStatus::ok: return "ok";
    case DnsStatus::nxdomain: return "nxdomain";
    case DnsStatus::servfail: return "servfail";
    case DnsStatus::timeout: return "timeout";
    case DnsStatus::bad_answer: return "bad_answer";
    }
    return "unknown";
}

std::string_view trouble_text(DnsStatus s) {
    switch (s) {
    case DnsStatus::servfail: return "SERVFAIL";
    case DnsStatus::timeout: return "timeout";
    case DnsStatus::bad_answer: return "unusable answer";
    case DnsStatus::ok: return "ok";
    case DnsStatus::nxdomain: return "NXDOMAIN";
    }
    return "error";
}

}  // namespace preflight
