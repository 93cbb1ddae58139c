#include "status_filter.hpp"

#include "ascii.hpp"

#include <cerrno>
#include <cstring>
#include <fstream>
#include <sstream>

namespace preflight {
namespace {

constexpr std::array<std::string_view, 3> kDecisionNames = {"keep", "defer", "bounce"};

// Splits a line into at most 4 blank-separated words (the 4th is "more than 3").
std::size_t split_words(std::string_view line, std::array<std::string_view, 4>& w) {
    std::size_t n = 0, i = 0;
    while (n < w.size()) {
        while (i < line.size() && ascii::is_hspace_cr(line[i])) ++i;
        if (i == line.size()) break;
        std::size_t start = i;
        while (i < line.size() && !ascii::is_hspace_cr(line[i])) ++i;
        w[n++] = line.substr(start, i - start);
    }
    return n;
}

// The remote reply inside Postfix's text: after "said: ", without "(in reply to ... command)".
std::string_view remote_reply(std::string_view text) {
    constexpr std::string_view kSaid = " said: ";
    std::size_t at = text.find(kSaid);
    if (at == std::string_view::npos) return {};
    std::string_view r = text.substr(at + kSaid.size());
    if (r.size() < 3 || r[0] < '2' || r[0] > '5' || r[1] < '0' || r[1] > '9' || r[2] < '0' || r[2] > '9') return {};
    if (r.ends_with(" command)")) {
        std::size_t paren = r.rfind(" (in reply to ");
        if (paren != std::string_view::npos) r = r.substr(0, paren);
    }
    return r;
}

}  // namespace

std::string_view to_string(Decision d) { return kDecisionNames[static_cast<std::size_t>(d)]; }

std::optional<Decision> parse_decision(std::string_view s) {
    for (std::size_t i = 0; i < kDecisionNames.size(); ++i)
        if (kDecisionNames[i] == s) return static_cast<Decision>(i);
    return std::nullopt;
}

StatusPolicy::StatusPolicy() {
    decisions_.fill(Decision::keep);
    set(Category::quota_issues, Decision::defer);
    set(Category::bad_mailbox, Decision::bounce);
    set(Category::bad_domain, Decision::bounce);
    set(Category::inactive_mailbox, Decision::bounce);
    set(Category::message_expired, Decision::bounce);
}

StatusPolicy StatusPolicy::parse(std::string_view text, std::string_view name) {
    StatusPolicy policy;
    std::array<int, kCategoryCount> named_at{};  // line of the category line, 0: none
    std::optional<Decision> dflt;
    int default_line = 0;
    int lineno = 0;
    auto fail = [&](const std::string& what) {
        throw PolicyError(std::string(name) + ":" + std::to_string(lineno) + ": " + what);
    };
    while (!text.empty()) {
        ++lineno;
        std::size_t nl = text.find('\n');
        std::string_view line = text.substr(0, nl);
        text.remove_prefix(nl == std::string_view::npos ? text.size() : nl + 1);
        if (std::size_t hash = line.find('#'); hash != std::string_view::npos) line = line.substr(0, hash);
        std::array<std::string_view, 4> w;
        std::size_t n = split_words(line, w);
        if (n == 0) continue;
        auto decision = [&](std::string_view word) {
            auto d = parse_decision(word);
            if (!d) fail("unknown decision '" + std::string(word) + "' (want keep, defer or bounce)");
            return *d;
        };
        if (w[0] == "category") {
            if (n != 3) fail("want 'category NAME keep|defer|bounce'");
            auto c = parse_category(w[1]);
            if (!c) fail("unknown category '" + std::string(w[1]) + "' (see preflight-rules(5))");
            auto& at = named_at[static_cast<std::size_t>(*c)];
            if (at) fail("category " + std::string(w[1]) + " already decided on line " + std::to_string(at));
            policy.set(*c, decision(w[2]));
            at = lineno;
        } else if (w[0] == "default") {
            if (n != 2) fail("want 'default keep|defer|bounce'");
            if (dflt) fail("second default (the first is on line " + std::to_string(default_line) + ")");
            dflt = decision(w[1]);
            default_line = lineno;
        } else {
            fail("unknown statement '" + std::string(w[0]) + "' (want category or default)");
        }
    }
    if (dflt)
        for (int i = 0; i < kCategoryCount; ++i)
            if (!named_at[static_cast<std::size_t>(i)]) policy.set(static_cast<Category>(i), *dflt);
    return policy;
}

StatusPolicy StatusPolicy::load(const std::string& path) {
    std::ifstream in(path, std::ios::binary);
    if (!in) throw PolicyError(path + ": cannot open: " + std::strerror(errno));
    std::ostringstream ss;
    ss << in.rdbuf();
    if (in.bad()) throw PolicyError(path + ": read error");
    return parse(ss.str(), path);
}

FilterResult filter_status(std::string_view key, const ReplyClassifier& classifier, const StatusPolicy& policy,
                           std::string& scratch) {
    FilterResult r;
    std::size_t sp = key.find(' ');
    EnhancedCode status;
    if (!parse_enhanced_code(key.substr(0, sp), status) || (status.cls != 4 && status.cls != 5))
        return r;  // Postfix filters 4.X.X and 5.X.X only; anything else is not ours to change
    std::string_view text = sp == std::string_view::npos ? std::string_view{} : key.substr(sp + 1);
    std::string_view reply = remote_reply(text);
    Classification c = classifier.classify(reply.empty() ? key : reply, Origin::remote, scratch);
    if (c.error != Classification::Error::none) {
        r.kind = FilterResult::Kind::unclassified;
        return r;
    }
    r.kind = FilterResult::Kind::decided;
    r.category = c.category;
    r.decision = policy.decide(c.category);
    if (r.decision == Decision::defer && status.cls == 5) r.new_class = '4';
    // A rule that makes a normally hard category soft says the failure is temporary ("Host or
    // domain name not found. ... try again" is bad-domain, bounce=soft): bouncing it would lose
    // mail that a later try delivers, so a bounce decision leaves such a 4.X.X alone.
    const bool temporary = c.bounce == Bounce::soft && default_bounce(c.category) == Bounce::hard;
    if (r.decision == Decision::bounce && status.cls == 4 && !temporary) r.new_class = '5';
    return r;
}

}  // namespace preflight
