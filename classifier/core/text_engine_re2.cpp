// The RE2::Set engine: one set per rule file. RE2's lazy DFA builds a state per new combination
// of partial matches; per-file sets keep the states small, and the first file that decides
// ends the search (tests/bench/bench_classify.cpp, "novel text").
#include "text_engine_impl.hpp"

#include <re2/re2.h>
#include <re2/set.h>

#include "rule_set.hpp"

namespace preflight {
namespace {

class Re2Engine final : public TextEngine {
public:
    explicit Re2Engine(const std::vector<TextPattern>& patterns) {
        const RE2::Options opts = rule_re2_options();
        std::string_view file;
        for (std::size_t i = 0; i < patterns.size(); ++i) {
            const TextPattern& p = patterns[i];
            std::string_view f = std::string_view(p.location).substr(0, p.location.rfind(':'));
            if (groups_.empty() || f != file) {
                groups_.push_back(Group{std::make_unique<RE2::Set>(opts, RE2::UNANCHORED), {}, std::string(f)});
                file = f;
            }
            std::string err;  // RE2's own message; the rule's FILE:LINE says where
            if (groups_.back().set->Add(p.pattern, &err) < 0) throw RuleError(p.location + ": bad regex: " + err);
            groups_.back().ids.push_back(static_cast<std::uint32_t>(i));
        }
        for (Group& g : groups_)
            if (!g.set->Compile()) throw RuleError(g.file + ": RE2 ran out of memory compiling the text rules");
    }

    std::size_t group_count() const override { return groups_.size(); }

    void scan(std::size_t g, std::string_view text, std::vector<std::uint32_t>& hits) const override {
        thread_local std::vector<int> set_hits;  // the hot path must not allocate
        set_hits.clear();
        const Group& group = groups_[g];
        if (!group.set->Match(re2::StringPiece(text.data(), text.size()), &set_hits)) return;
        for (int h : set_hits) hits.push_back(group.ids[static_cast<std::size_t>(h)]);
    }

private:
    struct Group {
        std::unique_ptr<RE2::Set> set;
        std::vector<std::uint32_t> ids;  // set index -> pattern index
        std::string file;
    };
    std::vector<Group> groups_;
};

}  // namespace

RE2::Options rule_re2_options() {
    RE2::Options opts;
    opts.set_case_sensitive(false);
    opts.set_log_errors(false);
    opts.set_max_mem(256 << 20);  // the lazy DFA of a few hundred patterns needs room
    return opts;
}

std::unique_ptr<TextEngine> compile_re2_engine(const std::vector<TextPattern>& patterns) {
    return std::make_unique<Re2Engine>(patterns);
}

}  // namespace preflight
