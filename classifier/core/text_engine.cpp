#include "text_engine_impl.hpp"

#include <algorithm>

namespace preflight {

void TextEngine::visit(std::size_t g, std::string_view text, MatchVisitor& v) const {
    thread_local std::vector<std::uint32_t> hits;  // the hot path must not allocate
    hits.clear();
    scan(g, text, hits);
    std::sort(hits.begin(), hits.end());
    for (std::uint32_t h : hits)
        if (v.wanted(h) && v.found(h)) return;
}

std::vector<std::uint32_t> TextEngine::all_hits(std::string_view text) const {
    struct All final : MatchVisitor {
        std::vector<std::uint32_t> hits;
        bool wanted(std::uint32_t) const override { return true; }
        bool found(std::uint32_t p) override {
            hits.push_back(p);
            return false;
        }
    } all;
    for (std::size_t g = 0; g < group_count(); ++g) visit(g, text, all);
    return all.hits;
}

std::unique_ptr<TextEngine> compile_text_engine(const std::vector<TextPattern>& patterns) {
#ifdef PREFLIGHT_HAVE_HYPERSCAN
    return compile_hyperscan_engine(patterns);
#else
    return compile_re2_engine(patterns);
#endif
}

std::unique_ptr<TextEngine> compile_text_engine(const std::vector<TextPattern>& patterns, std::string_view name) {
#ifdef PREFLIGHT_HAVE_HYPERSCAN
    if (name == "hyperscan") return compile_hyperscan_engine(patterns);
    if (name == "hyperscan-whole") return compile_hyperscan_engine(patterns, false);
    if (name == "hyperscan-eager") return compile_hyperscan_engine(patterns, true, true);
#endif
    if (name == "re2") return compile_re2_engine(patterns);
    return nullptr;
}

std::string text_engine_description() {
#ifdef PREFLIGHT_HAVE_HYPERSCAN
    return "hyperscan " + hyperscan_version();
#else
    return "re2";
#endif
}

std::vector<std::string_view> text_engines_built_in() {
#ifdef PREFLIGHT_HAVE_HYPERSCAN
    return {"hyperscan", "re2"};
#else
    return {"re2"};
#endif
}

}  // namespace preflight
