// Classifier rules: data files of "pattern -> category, bounce type, retry, action", merged by a
// builder in order (site files first, then the shipped ones) and compiled once into an immutable
// RuleSet: the text patterns in the rule engine (text_engine.hpp: Hyperscan, or RE2 where it is
// missing), codes in lookup tables. A RuleSet is shared by all threads; nothing in it changes
// after build(). The file grammar is in conf/rules/FORMAT.txt.
#pragma once

#include <re2/re2.h>
#include <re2/set.h>

#include <memory>
#include <mutex>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "category.hpp"
#include "reply_parser.hpp"
#include "text_engine.hpp"

namespace preflight {

// A rule file could not be read or compiled; what() is "FILE:LINE: reason".
class RuleError : public std::runtime_error {
public:
    using std::runtime_error::runtime_error;
};

struct Rule {
    enum class Kind { text, enhanced, code };
    Kind kind = Kind::text;
    Category category = Category::other;
    std::optional<Bounce> bounce;  // unset: default_bounce(category)
    std::optional<bool> retry;     // unset: derived from the reply class
    std::optional<Status> status;  // forced status
    int assume = 0;                // class to use for a code-less reply
    int only = 0;                  // text rule applies to this reply class only
    bool vague = false;            // text rule yields to an enhanced code known at its detail
    std::string pattern;           // regex, "5.1.1", "*.1.1", "550" or "5xx"
    std::string action_name;       // empty: the category's action
    std::string location;          // "FILE:LINE"
    bool shipped = false;          // from the rule files built into the program
    std::string_view action;       // resolved at build(); points into the RuleSet
    std::string_view action_json;  // the same as a JSON string, quotes included: escaped once
    std::string location_json;     // location as a JSON string, escaped once at build()
};

// The reply class a code-less reply matched by r is taken to have: assume=, else 5 for a
// hard bounce type, else 4.
int implied_class(const Rule& r);

class RuleSet {
public:
    ~RuleSet();
    RuleSet(const RuleSet&) = delete;
    RuleSet& operator=(const RuleSet&) = delete;

    // The first text rule (lowest index) matching text whose only= fits reply_class.
    const Rule* match_text(std::string_view text, int reply_class) const;
    // Exact class first, then "*.S.D".
    // The rule of e's own code (class, else any class); with subject_fallback, for a detail no
    // rule knows, the rule of its subject's X.S.0.
    const Rule* match_enhanced(EnhancedCode e, bool subject_fallback = true) const;
    // Exact code first, then "Nxx".
    const Rule* match_code(int code) const;

    std::string_view category_action(Category c) const;
    std::string_view category_action_json(Category c) const;
    std::size_t text_rule_count() const { return text_rules_.size(); }
    std::size_t rule_count() const { return rules_.size(); }
    const std::vector<Rule>& rules() const { return rules_; }
    // Every text rule that forces status=expired, as one regex (null when there is none): the
    // bounce classifier cuts the expiry wording out of a text to read the last error it quotes.
    // Compiled on first use (only bounces need it; a one-shot reply would pay for it at start).
    const RE2* expiry_text() const;

private:
    friend class RuleSetBuilder;
    RuleSet();

    std::vector<Rule> rules_;
    std::unique_ptr<TextEngine> engine_;
    std::vector<std::size_t> text_rules_;  // engine pattern index -> rules_ index
    std::string expiry_pattern_;
    mutable std::unique_ptr<RE2> expiry_;
    mutable std::once_flag expiry_once_;
    std::unordered_map<std::uint32_t, std::size_t> enhanced_;  // key(cls, s, d) -> rules_ index
    std::unordered_map<int, std::size_t> codes_;               // 550 or 5 (for 5xx) -> index
    std::unordered_map<std::string, std::string> actions_;
    std::vector<std::string_view> category_actions_;
    std::unordered_map<std::string, std::string> actions_json_;  // action name -> JSON string
    std::vector<std::string> category_actions_json_;
};

class RuleSetBuilder {
public:
    // Reads a rule file from disk. Throws RuleError (unreadable file, bad line).
    RuleSetBuilder& add_file(const std::string& path);
    // Adds rules from memory; name is used in locations ("codes.rules:12").
    RuleSetBuilder& add_text(std::string_view name, std::string_view content);
    // Adds the rule files compiled into the program (conf/rules/*.rules).
    RuleSetBuilder& add_shipped();
    // The text patterns added so far, in precedence order, as the engine is given them.
    std::vector<TextPattern> text_patterns() const;
    // Compiles everything. Throws RuleError naming the first broken pattern or reference.
    std::shared_ptr<const RuleSet> build();
    // The same with a named engine ("hyperscan", "re2"): null when it is not built in. For the
    // tests that check both engines give the same answers.
    std::shared_ptr<const RuleSet> build(std::string_view engine);

private:
    std::vector<Rule> rules_;
    std::unordered_map<std::string, std::string> actions_;
    std::unordered_map<std::string, std::string> action_locations_;
    bool adding_shipped_ = false;
};

// The shipped rule files, embedded at build time: (name, content) in precedence order.
struct ShippedRuleFile {
    std::string_view name, content;
};
extern const ShippedRuleFile kShippedRuleFiles[];
extern const std::size_t kShippedRuleFileCount;

}  // namespace preflight
