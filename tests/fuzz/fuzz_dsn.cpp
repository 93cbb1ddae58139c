// One bounce message, as `preflight-classify dsn` reads a file: GMime's MIME decoding, the DSN
// and free-text readers, the classification of each recipient and the writers.
#include <string>

#include "bounce_classifier.hpp"
#include "bounce_message.hpp"
#include "fuzz_common.hpp"
#include "rule_set.hpp"

using namespace preflight;

namespace {
const ReplyClassifier& classifier() {
    static const ReplyClassifier c(RuleSetBuilder().add_shipped().build());
    return c;
}
}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    const std::string_view message = fuzz::as_view(data, size);
    static std::string scratch, out;

    BounceLimits limits;
    limits.max_parts = 50;  // a small limit, so that the limit itself is reached and tested
    BounceReport report = parse_bounce_message(message, limits);
    if (!report.error.empty()) {
        FUZZ_CHECK(report.recipients.empty());
        for (Format f : {Format::json, Format::tsv, Format::text}) {
            out.clear();
            append_file_error(out, f, "fuzz.eml", report.error);
        }
        return 0;
    }
    std::vector<BounceVerdict> verdicts = classify_bounce(report, classifier(), scratch);
    FUZZ_CHECK(verdicts.size() == report.recipients.size());
    for (Format f : {Format::json, Format::tsv, Format::text}) {
        out.clear();
        append_verdict_header(out, f);
        for (const BounceVerdict& v : verdicts) append_verdict(out, f, "fuzz.eml", report, v);
        if (f == Format::json) FUZZ_CHECK(fuzz::valid_utf8(out));
    }
    return 0;
}
