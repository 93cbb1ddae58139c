// A Postfix log, as `preflight-classify log` reads it: every line through the line parser, the
// events through a DeliveryTracker (with a small max_open so that eviction runs too), the rows
// through the CSV and JSON writers.
#include <string>

#include "delivery_tracker.hpp"
#include "delivery_writers.hpp"
#include "fuzz_common.hpp"
#include "postfix_log.hpp"
#include "rule_set.hpp"

using namespace preflight;

namespace {
const ReplyClassifier& classifier() {
    static const ReplyClassifier c(RuleSetBuilder().add_shipped().build());
    return c;
}
}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    static std::string out;
    const YearReference ref = YearReference::from_time(1704067200);  // 2024-01-01, UTC or near it
    TrackerOptions opts;
    opts.max_open = 8;
    std::size_t rows = 0;
    const TextRowWriter csv(RowFormat::csv, true), json(RowFormat::json, true);
    DeliveryTracker tracker(classifier(), opts, [&](DeliveryRow& r) {
        ++rows;
        out.clear();
        csv.row(out, r);
        out.clear();
        json.row(out, r);
        FUZZ_CHECK(fuzz::valid_utf8(out));
    });

    fuzz::Splitter lines(fuzz::as_view(data, size), '\n');
    while (!lines.done()) {
        std::string_view line = lines.next();
        LogEvent ev;
        std::string_view why;
        switch (parse_log_line(line, ref, ev, why)) {
        case LineResult::event:
            remote_reply(ev.text);
            tracker.add(ev);
            FUZZ_CHECK(tracker.open() <= opts.max_open);
            break;
        case LineResult::not_a_log:
        case LineResult::malformed: FUZZ_CHECK(!why.empty()); break;
        case LineResult::ignored: break;
        }
    }
    tracker.finish();
    FUZZ_CHECK(tracker.open() == 0);
    (void)rows;
    return 0;
}
