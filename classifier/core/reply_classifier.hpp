// ReplyClassifier: one SMTP reply in, the relay's verdict out (status, bounce type, category,
// retry, recommended action, and the rule that decided). Precedence: text rule, enhanced
// code, basic code, then 'other'. Stateless apart from the shared immutable RuleSet, so one
// instance serves any number of threads; each thread passes its own scratch buffer.
#pragma once

#include <memory>
#include <string>
#include <string_view>

#include "category.hpp"
#include "reply_parser.hpp"
#include "rule_set.hpp"

namespace preflight {

struct Classification {
    enum class Error { none, empty, unclassifiable };
    Error error = Error::none;
    Status status = Status::deferred;
    Bounce bounce = Bounce::none;
    Category category = Category::other;
    int code = 0;           // 0: absent
    EnhancedCode enhanced;  // cls 0: absent
    bool retry = false;
    std::string_view action;       // points into the RuleSet
    std::string_view action_json;  // action as a JSON string (quotes included), escaped once
    const Rule* rule = nullptr;

    std::string_view error_text() const;
};

// The enhanced code (RFC 3463) that names a decided category, for a reply or bounce that
// reported none: class cls (2, 4 or 5; anything else 5), the subject and detail of the category's
// cause (bad-mailbox X.1.1, bad-domain 5.1.2 or 4.4.3, quota-issues X.2.2, policy-related X.7.1,
// message-expired X.4.7, other X.0.0, ...). Output marks such a code "derived".
EnhancedCode derived_enhanced_code(Category category, int cls);

class ReplyClassifier {
public:
    explicit ReplyClassifier(std::shared_ptr<const RuleSet> rules);

    // scratch: per-thread buffer reused between calls (no allocation once it has grown).
    Classification classify(std::string_view reply, Origin origin, std::string& scratch) const;
    Classification classify(const ParsedReply& reply, Origin origin) const;

    const RuleSet& rules() const { return *rules_; }

private:
    std::shared_ptr<const RuleSet> rules_;
};

}  // namespace preflight
