// From a parsed bounce to one verdict per recipient: the Diagnostic-Code (or the free-text
// reason) goes through the same ReplyClassifier as `reply`; the DSN Status field gives the
// enhanced code when the text has none; the Action field and the report kind decide the final
// status. Also the JSON Lines and text writers of `preflight-classify dsn`.
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "bounce_message.hpp"
#include "output.hpp"
#include "reply_classifier.hpp"

namespace preflight {

struct BounceVerdict {
    const BounceRecipient* recipient = nullptr;  // points into the BounceReport
    Status status = Status::bounce;
    Bounce bounce = Bounce::soft;
    Category category = Category::other;
    int code = 0;
    EnhancedCode enhanced;
    bool enhanced_derived = false;  // no code was reported: derived_enhanced_code() of the verdict
    std::string diagnostic;         // blanks collapsed, at most a few hundred bytes
    const Rule* rule = nullptr;
};

// One verdict per recipient of report, in its order. scratch: as for ReplyClassifier.
std::vector<BounceVerdict> classify_bounce(const BounceReport& report, const ReplyClassifier& classifier,
                                           std::string& scratch);

// Writers; file is the input's name as the user gave it (or "-", or "mbox#3").
void append_verdict(std::string& out, Format f, std::string_view file, const BounceReport& report,
                    const BounceVerdict& v);
void append_file_error(std::string& out, Format f, std::string_view file, std::string_view error);
void append_verdict_header(std::string& out, Format f);

}  // namespace preflight
