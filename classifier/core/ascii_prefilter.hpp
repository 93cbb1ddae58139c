// AsciiPrefilter: what a literal scan can tell about each rule pattern on pure-ASCII text (nearly
// every reply), so that the Hyperscan engine need not run its full automaton of a few hundred
// patterns there (tests/bench/bench_classify.cpp: the automaton's per-scan cost, not the text,
// was most of a reply's time).
//
// Each pattern is read (RE2 syntax, case-insensitive) into literals, one of which occurs in any
// ASCII text it matches. Where a whole alternative is a finite set of strings with at most a word
// boundary (\b) at either end ("\b(mailbox|inbox) is full\b"), its literals are exact: a hit whose
// ends pass the boundary checks is a match, with nothing more to run. Other literals only
// nominate their pattern for an exact check. A pattern no literal can stand for (no fixed text,
// syntax not read here) is checked on every text. Nothing here is a guess: anything not
// understood makes the pattern "always checked", never "never matches".
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "text_engine.hpp"

namespace preflight {

struct PrefilterLiteral {
    std::string text;  // lowercase ASCII, not empty; matched case-insensitively
    struct Use {
        std::uint32_t pattern;  // index into the patterns analysed
        bool exact;             // a hit (with its boundary checks) is a match of the pattern
        bool boundary_before;   // exact only: \b before the literal's first byte
        bool boundary_after;    // exact only: \b after its last byte
        std::uint32_t check;    // not exact: what to check, an index into AsciiPrefilter::checks
    };
    std::vector<Use> uses;
};

// A nominated pattern is checked on its own, and only in the alternative that nominated it where
// the pattern's top level can be split (no inline flags): a smaller regex to compile and run.
struct PrefilterCheck {
    std::uint32_t pattern;
    std::uint32_t begin, end;  // the part of the pattern's text to check
};

struct AsciiPrefilter {
    std::vector<PrefilterLiteral> literals;  // in a stable order: ids of the literal database
    std::vector<PrefilterCheck> checks;
    std::vector<std::uint32_t> always;  // patterns checked whole on every ASCII text, ascending
};

// The prefilter of patterns [start, end), pattern i as index i - start.
AsciiPrefilter analyse_for_ascii(const std::vector<TextPattern>& patterns, std::size_t start, std::size_t end);

// The prefilter as bytes, and back: the shipped rules' prefilter is analysed when the program is
// built, not at each start (tens of milliseconds of allocation for a few hundred patterns).
// from_bytes returns false on bytes it cannot read.
std::string prefilter_to_bytes(const AsciiPrefilter& pf);
bool prefilter_from_bytes(std::string_view bytes, AsciiPrefilter& out);

// A word byte for \b, as both engines read it on ASCII text.
inline bool ascii_word_byte(unsigned char c) {
    return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_';
}

}  // namespace preflight
