#include "rule_set.hpp"

#include "ascii.hpp"

#include "output.hpp"
#include "text_engine_impl.hpp"

#include <re2/re2.h>
#include <re2/set.h>

#include <algorithm>
#include <fstream>
#include <sstream>

namespace preflight {
namespace {

// Rule files are read line by line with any CR left on: space, tab and CR are blank.
constexpr std::string_view trim_line(std::string_view s) { return ascii::trim_if(s, ascii::is_hspace_cr); }

// Splits off the next blank-separated word.
std::string_view next_word(std::string_view& s) {
    s = trim_line(s);
    std::size_t n = 0;
    while (n < s.size() && !ascii::is_hspace_cr(s[n])) ++n;
    std::string_view w = s.substr(0, n);
    s = trim_line(s.substr(n));
    return w;
}

std::uint32_t enhanced_key(unsigned cls, unsigned subject, unsigned detail) {
    return cls * 1000000u + subject * 1000u + detail;
}

bool valid_action_name(std::string_view n) {
    if (n.empty()) return false;
    return std::all_of(n.begin(), n.end(),
                       [](char c) { return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-'; });
}

int parse_class(std::string_view v) {
    if (v == "2" || v == "2xx") return 2;
    if (v == "4" || v == "4xx") return 4;
    if (v == "5" || v == "5xx") return 5;
    return 0;
}

[[noreturn]] void fail(const std::string& where, const std::string& why) { throw RuleError(where + ": " + why); }

// Validates "550", "5xx" (code) or "5.1.1", "*.1.1" (enhanced) and returns the lookup key.
std::uint32_t code_key(Rule::Kind kind, std::string_view p, const std::string& where) {
    if (kind == Rule::Kind::code) {
        if (p.size() == 3 && p[0] >= '1' && p[0] <= '5' && p[1] == 'x' && p[2] == 'x')
            return static_cast<std::uint32_t>(p[0] - '0');
        if (p.size() == 3 && std::all_of(p.begin(), p.end(), [](char c) { return c >= '0' && c <= '9'; }) &&
            p[0] >= '1' && p[0] <= '5')
            return static_cast<std::uint32_t>(std::stoi(std::string(p)));
        fail(where, "bad basic code '" + std::string(p) + "' (want NNN or Nxx, N in 1-5)");
    }
    std::string_view rest = p;
    unsigned cls = 0;
    if (!rest.empty() && rest[0] == '*') {
        rest.remove_prefix(1);
    } else if (!rest.empty() && (rest[0] == '2' || rest[0] == '4' || rest[0] == '5')) {
        cls = static_cast<unsigned>(rest[0] - '0');
        rest.remove_prefix(1);
    } else {
        fail(where, "bad enhanced code '" + std::string(p) + "' (want C.S.D with C in 2,4,5,*)");
    }
    EnhancedCode e;
    std::string probe(1, '5');  // parse the subject and detail with a valid class in front
    probe.append(rest);
    if (!parse_enhanced_code(probe, e))
        fail(where, "bad enhanced code '" + std::string(p) + "' (want C.S.D with C in 2,4,5,*)");
    return enhanced_key(cls, e.subject, e.detail);
}

}  // namespace

int implied_class(const Rule& r) {
    if (r.assume) return r.assume;
    return r.bounce.value_or(default_bounce(r.category)) == Bounce::hard ? 5 : 4;
}

RuleSet::RuleSet() = default;
RuleSet::~RuleSet() = default;

const Rule* RuleSet::match_text(std::string_view text, int reply_class) const {
    // Groups in precedence order, each visited in ascending pattern order: the first fitting
    // match that is not vague is the lowest-index one. A vague rule is kept only in case no
    // other rule of any group fits.
    struct Pick final : MatchVisitor {
        const RuleSet& rs;
        int reply_class;
        const Rule* best = nullptr;
        const Rule* vague = nullptr;
        Pick(const RuleSet& r, int c) : rs(r), reply_class(c) {}
        const Rule& rule(std::uint32_t pattern) const { return rs.rules_[rs.text_rules_[pattern]]; }
        bool wanted(std::uint32_t pattern) const override {
            const Rule& r = rule(pattern);
            return !r.only || (reply_class ? reply_class : implied_class(r)) == r.only;
        }
        bool found(std::uint32_t pattern) override {
            const Rule& r = rule(pattern);
            if (r.vague) {
                if (!vague) vague = &r;
                return false;
            }
            best = &r;
            return true;
        }
    } pick(*this, reply_class);
    for (std::size_t g = 0; g < engine_->group_count() && !pick.best; ++g) engine_->visit(g, text, pick);
    return pick.best ? pick.best : pick.vague;
}

const Rule* RuleSet::match_enhanced(EnhancedCode e, bool subject_fallback) const {
    if (!e) return nullptr;
    // The exact code, then any class; then, for a detail no rule knows (a provider's own 5.7.60,
    // a new registry entry), its subject's X.S.0: RFC 3463 3.1 defines the subject as valid on
    // its own, and it still outranks the basic code.
    for (unsigned detail : {static_cast<unsigned>(e.detail), 0u}) {
        auto it = enhanced_.find(enhanced_key(e.cls, e.subject, detail));
        if (it == enhanced_.end()) it = enhanced_.find(enhanced_key(0, e.subject, detail));
        if (it != enhanced_.end()) return &rules_[it->second];
        if (e.detail == 0 || !subject_fallback) break;
    }
    return nullptr;
}

const Rule* RuleSet::match_code(int code) const {
    if (code <= 0) return nullptr;
    auto it = codes_.find(code);
    if (it == codes_.end()) it = codes_.find(code / 100);
    return it == codes_.end() ? nullptr : &rules_[it->second];
}

std::string_view RuleSet::category_action(Category c) const { return category_actions_[static_cast<std::size_t>(c)]; }

std::string_view RuleSet::category_action_json(Category c) const {
    return category_actions_json_[static_cast<std::size_t>(c)];
}

RuleSetBuilder& RuleSetBuilder::add_file(const std::string& path) {
    std::ifstream in(path, std::ios::binary);
    if (!in) throw RuleError(path + ": cannot open rule file");
    std::ostringstream ss;
    ss << in.rdbuf();
    if (in.bad()) throw RuleError(path + ": read error");
    return add_text(path, ss.str());
}

RuleSetBuilder& RuleSetBuilder::add_shipped() {
    adding_shipped_ = true;
    for (std::size_t i = 0; i < kShippedRuleFileCount; ++i)
        add_text(kShippedRuleFiles[i].name, kShippedRuleFiles[i].content);
    adding_shipped_ = false;
    return *this;
}

RuleSetBuilder& RuleSetBuilder::add_text(std::string_view name, std::string_view content) {
    std::unordered_map<std::string, std::string> seen_codes;  // duplicates inside one file
    std::size_t line_no = 0;
    while (!content.empty()) {
        std::size_t nl = content.find('\n');
        std::string_view line = content.substr(0, nl);
        content = nl == std::string_view::npos ? std::string_view{} : content.substr(nl + 1);
        ++line_no;
        std::string where = std::string(name) + ":" + std::to_string(line_no);
        std::string_view rest = trim_line(line);
        if (rest.empty() || rest[0] == '#') continue;
        if (rest.find('\0') != std::string_view::npos) fail(where, "NUL byte in rule line");

        std::string_view head = next_word(rest);
        if (head == "action") {
            std::string_view aname = next_word(rest);
            if (!valid_action_name(aname))
                fail(where, "bad action name '" + std::string(aname) + "' (want [a-z0-9-]+)");
            if (rest.empty()) fail(where, "action '" + std::string(aname) + "' has no text");
            // The first definition wins, as for rules: site files can reword shipped actions.
            if (!actions_.count(std::string(aname))) {
                actions_.emplace(std::string(aname), std::string(rest));
                action_locations_.emplace(std::string(aname), where);
            } else if (action_locations_[std::string(aname)].rfind(std::string(name) + ":", 0) == 0) {
                fail(where,
                     "action '" + std::string(aname) + "' already defined at " + action_locations_[std::string(aname)]);
            }
            continue;
        }

        Rule r;
        r.location = where;
        r.shipped = adding_shipped_;
        auto cat = parse_category(head);
        if (!cat) fail(where, "unknown category or statement '" + std::string(head) + "'");
        r.category = *cat;
        for (;;) {
            std::string_view word = next_word(rest);
            if (word.empty()) fail(where, "rule has no matcher (text, enhanced or code)");
            if (word == "text" || word == "enhanced" || word == "code") {
                r.kind = word == "text"       ? Rule::Kind::text
                         : word == "enhanced" ? Rule::Kind::enhanced
                                              : Rule::Kind::code;
                break;
            }
            std::size_t eq = word.find('=');
            if (eq == std::string_view::npos)
                fail(where, "expected KEY=VALUE or a matcher (text, enhanced, code), got '" + std::string(word) + "'");
            std::string_view key = word.substr(0, eq), val = word.substr(eq + 1);
            if (key == "bounce") {
                r.bounce = parse_bounce(val);
                if (!r.bounce) fail(where, "bounce=" + std::string(val) + ": want hard, soft or none");
            } else if (key == "retry") {
                if (val != "yes" && val != "no") fail(where, "retry=" + std::string(val) + ": want yes or no");
                r.retry = val == "yes";
            } else if (key == "status") {
                r.status = parse_status(val);
                if (!r.status)
                    fail(where, "status=" + std::string(val) + ": want sent, deferred, bounce, rejected or expired");
            } else if (key == "assume" || key == "only") {
                int c = parse_class(val);
                if (!c) fail(where, std::string(key) + "=" + std::string(val) + ": want 2, 4 or 5");
                (key == "assume" ? r.assume : r.only) = c;
            } else if (key == "vague") {
                if (val != "yes" && val != "no") fail(where, "vague=" + std::string(val) + ": want yes or no");
                r.vague = val == "yes";
            } else if (key == "action") {
                if (!valid_action_name(val)) fail(where, "bad action name '" + std::string(val) + "'");
                r.action_name = std::string(val);
            } else {
                fail(where, "unknown key '" + std::string(key) +
                                "' (want bounce, retry, status, assume, only, vague, action)");
            }
        }
        if (rest.empty()) fail(where, "matcher has no pattern");
        r.pattern = std::string(rest);
        if (r.kind != Rule::Kind::text) {
            if (r.only || r.assume || r.vague) fail(where, "only=, assume= and vague= apply to text rules only");
            if (r.pattern.find_first_of(" \t") != std::string::npos)
                fail(where, "code pattern '" + r.pattern + "' contains blanks");
            std::string key = (r.kind == Rule::Kind::code ? "code " : "enhanced ") +
                              std::to_string(code_key(r.kind, r.pattern, where));
            auto [it, fresh] = seen_codes.emplace(key, where);
            if (!fresh) fail(where, "duplicate rule for " + r.pattern + " (first at " + it->second + ")");
        }
        rules_.push_back(std::move(r));
    }
    return *this;
}

std::vector<TextPattern> RuleSetBuilder::text_patterns() const {
    std::vector<TextPattern> out;
    for (const Rule& r : rules_)
        if (r.kind == Rule::Kind::text) out.push_back(TextPattern{r.pattern, r.location, r.shipped});
    return out;
}

std::shared_ptr<const RuleSet> RuleSetBuilder::build() { return build({}); }

const RE2* RuleSet::expiry_text() const {
    std::call_once(expiry_once_, [this] {
        if (expiry_pattern_.empty()) return;
        auto re = std::make_unique<RE2>(expiry_pattern_, rule_re2_options());
        if (re->ok()) expiry_ = std::move(re);
    });
    return expiry_.get();
}

std::shared_ptr<const RuleSet> RuleSetBuilder::build(std::string_view engine) {
    // make_shared cannot reach the private constructor.
    std::shared_ptr<RuleSet> rs(new RuleSet());  // NOLINT: private constructor
    rs->rules_ = rules_;
    rs->actions_ = actions_;
    // Actions are long and the same for many results: escape each once, not once per line.
    for (const auto& [name, text] : rs->actions_) append_json_string(rs->actions_json_[name], text);

    const RE2::Options opts = rule_re2_options();
    // The engine that will compile the patterns: RE2 reports a bad site pattern itself, so only
    // another engine needs each site pattern checked with RE2 first.
    const std::string_view effective = engine.empty() ? text_engines_built_in().front() : engine;

    std::vector<TextPattern> patterns;
    for (std::size_t i = 0; i < rs->rules_.size(); ++i) {
        Rule& r = rs->rules_[i];
        if (r.kind == Rule::Kind::text) {
            // Site patterns must also compile with RE2, the other engine: a site file that
            // works on this host works on one without Hyperscan too, and expiry_text() is RE2.
            if (!r.shipped && effective != "re2") {
                RE2 check(r.pattern, opts);
                if (!check.ok()) fail(r.location, "bad regex: " + check.error());
            }
            patterns.push_back(TextPattern{r.pattern, r.location, r.shipped});
            rs->text_rules_.push_back(i);
        } else {
            std::uint32_t key = code_key(r.kind, r.pattern, r.location);
            // emplace keeps the first rule for a code: site files override shipped ones.
            if (r.kind == Rule::Kind::code) rs->codes_.emplace(static_cast<int>(key), i);
            else rs->enhanced_.emplace(key, i);
        }
        if (!r.action_name.empty()) {
            auto it = rs->actions_.find(r.action_name);
            if (it == rs->actions_.end()) fail(r.location, "undefined action '" + r.action_name + "'");
            r.action = it->second;
            r.action_json = rs->actions_json_[r.action_name];
        }
    }
    for (const Rule& r : rs->rules_) {
        if (r.kind != Rule::Kind::text || r.status != Status::expired) continue;
        if (!rs->expiry_pattern_.empty()) rs->expiry_pattern_.push_back('|');
        rs->expiry_pattern_.append("(?:").append(r.pattern).push_back(')');
    }
    rs->engine_ = engine.empty() ? compile_text_engine(patterns) : compile_text_engine(patterns, engine);
    if (!rs->engine_) return nullptr;  // a named engine not built in

    rs->category_actions_.resize(kCategoryCount);
    for (int c = 0; c < kCategoryCount; ++c) {
        auto it = rs->actions_.find(std::string(to_string(static_cast<Category>(c))));
        if (it != rs->actions_.end()) rs->category_actions_[static_cast<std::size_t>(c)] = it->second;
    }
    rs->category_actions_json_.resize(kCategoryCount);
    for (int c = 0; c < kCategoryCount; ++c)
        append_json_string(rs->category_actions_json_[static_cast<std::size_t>(c)],
                           rs->category_actions_[static_cast<std::size_t>(c)]);
    for (Rule& r : rs->rules_) {
        append_json_string(r.location_json, r.location);
        if (!r.action_name.empty()) continue;
        r.action = rs->category_actions_[static_cast<std::size_t>(r.category)];
        r.action_json = rs->category_actions_json_[static_cast<std::size_t>(r.category)];
    }
    return rs;
}

}  // namespace preflight
