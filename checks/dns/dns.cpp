#include "dns.hpp"

namespace preflight {

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

}  // namespace preflight
