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
