// A socketmap connection's byte stream, as `preflight-classify serve` reads it: netstrings parsed
// from whatever has arrived (the input is fed in reads of 1..64 bytes, as the server carries a
// partial request over), each complete request "status KEY" through the delivery status filter.
//
// Input: byte 0 picks the read size, byte 1 the payload limit, the rest is the stream.
// Invariants: the reads see the same requests and the same end as one parse of the whole
// stream; a complete netstring re-encodes to itself; a request never needs more buffered
// bytes than its limit allows.
#include <string>
#include <vector>

#include "fuzz_common.hpp"
#include "netstring.hpp"
#include "rule_set.hpp"
#include "status_filter.hpp"

using namespace preflight;

namespace {

const ReplyClassifier& classifier() {
    static const ReplyClassifier c(RuleSetBuilder().add_shipped().build());
    return c;
}

struct Outcome {
    std::vector<std::string> requests;
    Netstring::Status end = Netstring::Status::incomplete;  // what stopped the stream
};

// serve_requests(): the complete requests at the start of data; returns the bytes they took.
std::size_t serve(std::string_view data, std::size_t max_payload, Outcome& o, std::string& scratch) {
    static const StatusPolicy policy;
    std::size_t used = 0;
    while (used < data.size()) {
        Netstring ns = parse_netstring(data.substr(used), max_payload);
        if (ns.status != Netstring::Status::complete) {
            o.end = ns.status;
            return used;
        }
        FUZZ_CHECK(ns.payload.size() <= max_payload);
        FUZZ_CHECK(ns.consumed > ns.payload.size() && ns.consumed <= data.size() - used);
        std::string again;
        append_netstring(again, ns.payload);
        FUZZ_CHECK(again == data.substr(used, ns.consumed));
        o.requests.emplace_back(ns.payload);
        std::string_view req = ns.payload;
        if (std::size_t sp = req.find(' '); sp != std::string_view::npos && req.substr(0, sp) == "status") {
            FilterResult r = filter_status(req.substr(sp + 1), classifier(), policy, scratch);
            if (r.new_class) FUZZ_CHECK(r.new_class == '4' || r.new_class == '5');
        }
        used += ns.consumed;
    }
    o.end = Netstring::Status::incomplete;
    return used;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    if (size < 2) return 0;
    const std::size_t read_size = data[0] % 64 + 1;
    const std::size_t max_payload = data[1] < 128 ? data[1] : 65536;
    const std::string_view stream = fuzz::as_view(data + 2, size - 2);
    static std::string scratch;

    Outcome whole;
    serve(stream, max_payload, whole, scratch);

    // As the server: append each read to what is carried over, serve, keep the rest; stop at
    // the first framing error (the server answers PERM and closes).
    Outcome reads;
    std::string in;
    for (std::size_t off = 0; off < stream.size(); off += read_size) {
        in.append(stream.substr(off, read_size));
        std::size_t used = serve(in, max_payload, reads, scratch);
        in.erase(0, used);
        if (reads.end != Netstring::Status::incomplete) break;
        // Carried over: at most the digits, ':' and payload of one request, and the ','.
        FUZZ_CHECK(in.size() <= max_payload + 24);
    }
    FUZZ_CHECK(reads.requests == whole.requests);
    FUZZ_CHECK(reads.end == whole.end);
    return 0;
}
