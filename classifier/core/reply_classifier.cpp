#include "reply_classifier.hpp"

namespace preflight {

std::string_view Classification::error_text() const {
    switch (error) {
    case Error::none: return {};
    case Error::empty: return "empty reply";
    case Error::unclassifiable: return "no SMTP reply code and no rule matches the text";
    }
    return {};
}

EnhancedCode derived_enhanced_code(Category category, int cls) {
    const auto c = static_cast<std::uint16_t>(cls == 2 || cls == 4 ? cls : 5);
    auto code = [c](std::uint16_t subject, std::uint16_t detail) { return EnhancedCode{c, subject, detail}; };
    switch (category) {
    case Category::success: return EnhancedCode{2, 0, 0};
    case Category::bad_mailbox: return code(1, 1);  // bad destination mailbox address
    case Category::bad_domain:
        return c == 4 ? code(4, 3)                          // directory server (DNS) failure
                      : code(1, 2);                         // bad destination system address
    case Category::inactive_mailbox: return code(2, 1);     // mailbox disabled
    case Category::quota_issues: return code(2, 2);         // mailbox full
    case Category::invalid_sender: return code(1, 7);       // bad sender's mailbox address
    case Category::message_expired: return code(4, 7);      // delivery time expired
    case Category::no_answer_from_host: return code(4, 1);  // no answer from host
    case Category::bad_connection: return code(4, 2);       // bad connection
    case Category::routing_errors: return code(4, 4);       // unable to route
    case Category::bad_configuration: return code(3, 5);    // system incorrectly configured
    case Category::protocol_errors: return code(5, 0);      // other protocol status
    case Category::content_related: return code(6, 0);      // other media error
    case Category::relaying_issues:                         // delivery not authorized
    case Category::policy_related:
    case Category::spam_related:
    case Category::virus_related: return code(7, 1);
    case Category::other: break;
    }
    return code(0, 0);
}

ReplyClassifier::ReplyClassifier(std::shared_ptr<const RuleSet> rules) : rules_(std::move(rules)) {}

Classification ReplyClassifier::classify(std::string_view reply, Origin origin, std::string& scratch) const {
    ParsedReply parsed;
    parse_reply(reply, scratch, parsed);
    return classify(parsed, origin);
}

Classification ReplyClassifier::classify(const ParsedReply& p, Origin origin) const {
    Classification c;
    c.code = p.code;
    c.enhanced = p.enhanced;
    if (p.text.empty() && !p.code && !p.enhanced) {
        c.error = Classification::Error::empty;
        return c;
    }
    int cls = p.reply_class();
    const Rule* rule = nullptr;
    // A 1xx or 3xx is no delivery result: as the last reply it is a protocol slip whatever its
    // text says ("354 5.2.2 mailbox full" is not a full mailbox), so only code rules apply.
    if (cls != 1 && cls != 3) {
        rule = rules_->match_text(p.text, cls);
        // Vague words ("mailbox unavailable", "address rejected") say less than an enhanced code
        // a rule knows at its own detail: "550 5.1.1 Address rejected" is an unknown user.
        if (rule && rule->vague && p.enhanced.detail != 0)
            if (const Rule* by_code = rules_->match_enhanced(p.enhanced, false)) rule = by_code;
        if (!rule) rule = rules_->match_enhanced(p.enhanced);
    }
    if (!rule) rule = rules_->match_code(p.code);
    if (!rule && !cls) {
        c.error = Classification::Error::unclassifiable;
        return c;
    }
    c.rule = rule;
    c.category = rule ? rule->category : Category::other;
    c.bounce = rule && rule->bounce ? *rule->bounce : default_bounce(c.category);
    if (!cls) cls = implied_class(*rule);

    if (rule && rule->status) c.status = *rule->status;
    else if (cls == 2) c.status = Status::sent;
    else if (cls == 5) c.status = Status::bounce;
    else c.status = Status::deferred;  // 4xx, and the odd 1xx/3xx as the last reply
    if (origin == Origin::edge && (c.status == Status::deferred || c.status == Status::bounce))
        c.status = Status::rejected;

    if (c.status == Status::sent) c.bounce = Bounce::none;
    // A 2xx that a rule put in a failure category is still a delivery: keep the category.
    if (rule && rule->retry) c.retry = *rule->retry;
    else c.retry = cls == 4 && c.bounce != Bounce::hard && c.status != Status::expired;
    if (c.status == Status::sent || c.status == Status::expired) c.retry = false;

    c.action = rule ? rule->action : rules_->category_action(c.category);
    c.action_json = rule ? rule->action_json : rules_->category_action_json(c.category);
    return c;
}

}  // namespace preflight
