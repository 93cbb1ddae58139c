// TextEngine: the text patterns of every rule, compiled once into an immutable matcher shared by
// all threads. Two implementations behind this one interface, chosen when the project is
// configured (PREFLIGHT_RULE_ENGINE): Hyperscan, which compiles all patterns into one automaton
// ahead of time and scans new text with no per-input construction, and RE2::Set, the fallback
// where Hyperscan does not exist (it is x86-64 only).
//
// Patterns are grouped: the engine reports the hits of one group at a time, in pattern order,
// and the rule set stops at the first group that decides. Each engine groups as suits it (RE2:
// one set per rule file, so that its lazy DFA builds small states; Hyperscan: one database for
// the site files and one for the shipped ones).
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

namespace preflight {

struct TextPattern {
    std::string pattern;   // case-insensitive, UTF-8
    std::string location;  // "FILE:LINE", for errors
    bool shipped = false;  // from the rule files built into the program
};

// What the rule set asks of one group's matches (RuleSet::match_text): which patterns can decide
// this text at all (only= fits the reply), and whether a match ends the search.
class MatchVisitor {
public:
    virtual bool wanted(std::uint32_t pattern) const = 0;
    // A wanted pattern that matches; true ends the search.
    virtual bool found(std::uint32_t pattern) = 0;

protected:
    ~MatchVisitor() = default;
};

class TextEngine {
public:
    virtual ~TextEngine() = default;
    virtual std::size_t group_count() const = 0;
    // Appends to hits the index (into the patterns given to compile) of every pattern of group
    // g that matches text, each once, in no particular order. Allocates nothing once hits has
    // grown; safe to call from any number of threads at once.
    virtual void scan(std::size_t g, std::string_view text, std::vector<std::uint32_t>& hits) const = 0;
    // Calls v.found(i) for each pattern i of group g that v wants and that matches text, in
    // ascending index order, until found returns true. An engine may leave the patterns v does
    // not want, and those after the end, unexamined. This one: scan, then sort.
    virtual void visit(std::size_t g, std::string_view text, MatchVisitor& v) const;
    // Every pattern of every group that matches text, through visit(), in ascending order: what
    // the tests compare between engines and between an engine's paths.
    std::vector<std::uint32_t> all_hits(std::string_view text) const;
};

// Compiles patterns with the configured engine. Throws RuleError("FILE:LINE: reason") naming
// the first pattern the engine cannot compile.
std::unique_ptr<TextEngine> compile_text_engine(const std::vector<TextPattern>& patterns);
// As compile_text_engine, with a named engine ("hyperscan" or "re2") when it was built in; for
// the tests that check both engines give the same answers. Null when name is not built in.
// "hyperscan-whole": Hyperscan without its ASCII path, for the tests of that path;
// "hyperscan-eager": its ASCII path with every check made by RE2 from the first use.
std::unique_ptr<TextEngine> compile_text_engine(const std::vector<TextPattern>& patterns, std::string_view name);

// The engine compile_text_engine uses, as --version prints it ("hyperscan 5.4.0", "re2").
std::string text_engine_description();
// Names of the engines built into this program, the default first.
std::vector<std::string_view> text_engines_built_in();

}  // namespace preflight
