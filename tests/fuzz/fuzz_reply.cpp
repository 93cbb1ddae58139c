// One reply line, as `preflight-classify reply` reads it, through the parser, the shipped rules
// and every writer. Invariants: the JSON line is valid UTF-8 and one line.
#include <string>

#include "fuzz_common.hpp"
#include "output.hpp"
#include "reply_classifier.hpp"
#include "reply_parser.hpp"
#include "rule_set.hpp"

using namespace preflight;

namespace {
const ReplyClassifier& classifier() {
    static const ReplyClassifier c(RuleSetBuilder().add_shipped().build());
    return c;
}
}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    const std::string_view reply = fuzz::as_view(data, size);
    static std::string scratch, out;

    ParsedReply parsed;
    parse_reply(reply, scratch, parsed);
    if (parsed.code) FUZZ_CHECK(parsed.code >= 100 && parsed.code <= 999);

    EnhancedCode ec;
    if (parse_enhanced_code(reply, ec)) {
        char buf[12];
        FUZZ_CHECK(ec.format(buf) <= sizeof buf);
    }

    for (Origin origin : {Origin::remote, Origin::edge}) {
        Classification c = classifier().classify(reply, origin, scratch);
        for (Format f : {Format::json, Format::tsv, Format::text}) {
            out.clear();
            ResultWriter w(f);
            w.header(out);
            if (c.error == Classification::Error::none) w.result(out, reply, c);
            else w.error(out, reply, c.error_text(), 1);
            if (f == Format::json) {
                FUZZ_CHECK(fuzz::valid_utf8(out));
                FUZZ_CHECK(!out.empty() && out.back() == '\n' && out.find('\n') == out.size() - 1);
            }
        }
    }
    return 0;
}
