// The decision behind `preflight-classify serve`: Postfix hands a delivery status "X.Y.Z text"
// to its delivery status filter (smtp_/lmtp_/local_delivery_status_filter), the classifier
// names the category of the text, and the site's policy says per category whether to keep the
// status, defer (a 5.Y.Z becomes 4.Y.Z) or bounce (a 4.Y.Z becomes 5.Y.Z). Only the class digit
// changes; the text stays as it is, so the log and the DSN still show what the remote said.
// A bounce decision leaves a 4.X.X alone when the rule that matched marks a normally hard
// category soft (a temporary DNS failure is bad-domain, but "try again").
//
// Policy file (conf/status-policy.conf, preflight-classify(1)): one statement per line, '#'
// starts a comment, words separated by blanks:
//   category NAME keep|defer|bounce   the decision for one category (preflight-rules(5) names)
//   default keep|defer|bounce         the decision for every category no category line names
// Without a default line, unnamed categories keep the built-in decision (the seeds:
// quota-issues defer; bad-mailbox, bad-domain, inactive-mailbox, message-expired bounce; the
// rest keep). Errors are "FILE:LINE: what is wrong".
#pragma once

#include <array>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>

#include "category.hpp"
#include "reply_classifier.hpp"

namespace preflight {

enum class Decision { keep, defer, bounce };
std::string_view to_string(Decision d);
std::optional<Decision> parse_decision(std::string_view s);

// A policy file could not be read or parsed; what() is "FILE:LINE: reason" (or "FILE: reason").
class PolicyError : public std::runtime_error {
public:
    using std::runtime_error::runtime_error;
};

class StatusPolicy {
public:
    // The built-in policy (the seeds' decisions).
    StatusPolicy();
    // Parses a policy file's text; name is the file name used in errors. Throws PolicyError.
    static StatusPolicy parse(std::string_view text, std::string_view name);
    // Reads and parses a file. Throws PolicyError.
    static StatusPolicy load(const std::string& path);

    Decision decide(Category c) const { return decisions_[static_cast<std::size_t>(c)]; }
    void set(Category c, Decision d) { decisions_[static_cast<std::size_t>(c)] = d; }

private:
    std::array<Decision, kCategoryCount> decisions_{};
};

struct FilterResult {
    enum class Kind {
        not_delivery_status,  // the key is no "X.Y.Z text" with class 4 or 5: leave it alone
        unclassified,         // no category: leave it alone
        decided,
    };
    Kind kind = Kind::not_delivery_status;
    Category category = Category::other;
    Decision decision = Decision::keep;
    char new_class = 0;  // '4' or '5' when the status must change, 0 to leave it (NOTFOUND)
};

// Decides what to do with Postfix's key "X.Y.Z text". With a remote reply in the text
// ("host mx[1.2.3.4] said: 450 4.1.1 ... (in reply to RCPT TO command)") the remote reply is
// classified (its basic code counts); otherwise the key itself (Postfix's own text, e.g.
// "4.4.1 connect to mx[...]: Connection refused"). scratch: per-thread buffer.
FilterResult filter_status(std::string_view key, const ReplyClassifier& classifier, const StatusPolicy& policy,
                           std::string& scratch);

}  // namespace preflight
