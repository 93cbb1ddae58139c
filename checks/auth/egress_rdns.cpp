// Egress reverse DNS (see egress_rdns.hpp).
#include "egress_rdns.hpp"

#include <algorithm>
#include <memory>

namespace preflight {
namespace {

bool trouble(DnsStatus s) { return s == DnsStatus::servfail || s == DnsStatus::timeout || s == DnsStatus::bad_answer; }

// RFC 5737 (192.0.2.0/24, 198.51.100.0/24, 203.0.113.0/24) and RFC 3849 (2001:db8::/32).
bool documentation_address(const IpAddress& a) {
    const auto& b = a.bytes;
    if (a.v6) return b[0] == 0x20 && b[1] == 0x01 && b[2] == 0x0d && b[3] == 0xb8;
    return (b[0] == 192 && b[1] == 0 && b[2] == 2) || (b[0] == 198 && b[1] == 51 && b[2] == 100) ||
           (b[0] == 203 && b[1] == 0 && b[2] == 113);
}

// Where the forward lookups of one address start in the batch, and how many it has.
struct ForwardSpan {
    std::size_t first = 0, count = 0;
};

// The verdict for one address from its PTR answer and its names' forward answers.
void judge(EgressRdns& r, const DnsAnswer& ptr, std::span<const std::shared_ptr<const DnsAnswer>> forward) {
    if (trouble(ptr.status)) {
        r.result = FcrdnsResult::dns_error;
        r.detail = "PTR lookup of " + reverse_name(r.address) + ": " + std::string(to_string(ptr.status));
        return;
    }
    if (r.ptr_names.empty()) {
        r.result = FcrdnsResult::no_ptr;
        r.detail = ptr.status == DnsStatus::nxdomain ? reverse_name(r.address) + " does not exist (NXDOMAIN)"
                                                     : reverse_name(r.address) + " has no PTR record";
        return;
    }
    const int family_type = r.address.v6 ? rrtype::AAAA : rrtype::A;
    bool any_trouble = false;
    std::string seen;  // "a.example -> 192.0.2.8; b.example -> none"
    for (std::size_t i = 0; i < forward.size(); ++i) {
        const DnsAnswer& f = *forward[i];
        for (const std::string& rec : f.records)
            if (parse_ip(rec) == r.address) {
                r.result = FcrdnsResult::confirmed;
                r.detail = "PTR " + r.ptr_names[i] + " resolves back to it";
                return;
            }
        any_trouble = any_trouble || trouble(f.status);
        std::string got = trouble(f.status)   ? std::string(to_string(f.status))
                          : f.records.empty() ? std::string(family_type == rrtype::A ? "no A record" : "no AAAA record")
                                              : f.records.front();
        seen += (seen.empty() ? "" : "; ") + r.ptr_names[i] + " -> " + got;
    }
    r.result = any_trouble ? FcrdnsResult::dns_error : FcrdnsResult::not_confirmed;
    r.detail = "PTR " + seen;
}

}  // namespace

std::string_view to_string(FcrdnsResult r) {
    switch (r) {
    case FcrdnsResult::confirmed: return "confirmed";
    case FcrdnsResult::no_ptr: return "no_ptr";
    case FcrdnsResult::not_confirmed: return "not_confirmed";
    case FcrdnsResult::dns_error: return "dns_error";
    case FcrdnsResult::not_checked: return "not_checked";
    }
    return "?";
}

std::string reverse_name(const IpAddress& a) {
    static constexpr char kHex[] = "0123456789abcdef";
    std::string out;
    if (!a.v6) {
        for (int i = 3; i >= 0; --i) out += std::to_string(a.bytes[static_cast<std::size_t>(i)]) + ".";
        return out + "in-addr.arpa";
    }
    for (int i = 15; i >= 0; --i) {
        const std::uint8_t b = a.bytes[static_cast<std::size_t>(i)];
        out += kHex[b & 0xf];
        out += '.';
        out += kHex[b >> 4];
        out += '.';
    }
    return out + "ip6.arpa";
}

std::vector<EgressRdns> check_egress_rdns(Resolver& resolver, std::span<const IpAddress> addresses) {
    std::vector<EgressRdns> out(addresses.size());
    std::vector<DnsQuestion> ptr_questions;
    std::vector<std::size_t> asked;  // indices into out, in ptr_questions order
    for (std::size_t i = 0; i < addresses.size(); ++i) {
        out[i].address = addresses[i];
        if (documentation_address(addresses[i])) {
            out[i].result = FcrdnsResult::not_checked;
            out[i].detail = "a documentation address (RFC 5737, RFC 3849)";
            continue;
        }
        ptr_questions.push_back({reverse_name(addresses[i]), rrtype::PTR});
        asked.push_back(i);
    }
    const auto ptrs = resolver.query_all(ptr_questions);

    std::vector<DnsQuestion> forward_questions;
    std::vector<ForwardSpan> spans(asked.size());
    for (std::size_t k = 0; k < asked.size(); ++k) {
        EgressRdns& r = out[asked[k]];
        if (ptrs[k]->status == DnsStatus::ok)
            for (const std::string& name : ptrs[k]->records)
                if (r.ptr_names.size() < kMaxPtrNames && !name.empty()) r.ptr_names.push_back(name);
        spans[k] = {forward_questions.size(), r.ptr_names.size()};
        for (const std::string& name : r.ptr_names)
            forward_questions.push_back({name, r.address.v6 ? rrtype::AAAA : rrtype::A});
    }
    const auto forward = resolver.query_all(forward_questions);
    for (std::size_t k = 0; k < asked.size(); ++k)
        judge(out[asked[k]], *ptrs[k],
              std::span<const std::shared_ptr<const DnsAnswer>>(forward).subspan(spans[k].first, spans[k].count));
    return out;
}

std::string describe(const EgressRdns& r) {
    const std::string ip = r.address.to_string();
    const std::string forward_type = r.address.v6 ? "AAAA" : "A";
    const std::string head = "egress " + ip + ": ";
    switch (r.result) {
    case FcrdnsResult::confirmed: return head + "forward-confirmed reverse DNS (" + r.detail + ")";
    case FcrdnsResult::no_ptr:
        return head + "no reverse DNS (" + r.detail +
               "); Gmail, Yahoo and Microsoft refuse or junk mail from an address without forward-confirmed "
               "reverse DNS: have the address's provider publish a PTR record naming a host whose " +
               forward_type + " record is " + ip;
    case FcrdnsResult::not_confirmed:
        return head + "reverse DNS not forward-confirmed (" + r.detail + "); the PTR name must resolve back to " + ip +
               ": add " + ip + " to that name's " + forward_type + " records, or point the PTR at a name that has it";
    case FcrdnsResult::dns_error: return head + "reverse DNS unknown (" + r.detail + "): DNS trouble";
    case FcrdnsResult::not_checked:
        return head + "not checked, " + r.detail + ": list the addresses the relay sends from in EgressAddresses";
    }
    return head + r.detail;
}

}  // namespace preflight
