// Helpers shared by the libFuzzer targets: the input as a string_view, a check that aborts (so
// libFuzzer records the input) when an invariant of the code under test does not hold, and a
// splitter that turns one input into the pieces a driver feeds to several calls.
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string_view>

#include "output.hpp"
#include "utf8.hpp"

namespace preflight::fuzz {

inline std::string_view as_view(const std::uint8_t* data, std::size_t size) {
    return {reinterpret_cast<const char*>(data), size};
}

// An invariant broke: report it and abort, which libFuzzer treats as a crash.
[[noreturn]] inline void fail(const char* what) {
    std::fprintf(stderr, "fuzz invariant failed: %s\n", what);
    std::abort();
}
#define FUZZ_CHECK(cond)                             \
    do {                                             \
        if (!(cond)) ::preflight::fuzz::fail(#cond); \
    } while (0)

// True when s is valid UTF-8 (RFC 3629).
inline bool valid_utf8(std::string_view s) {
    for (std::size_t i = 0; i < s.size();) {
        std::size_t n = static_cast<unsigned char>(s[i]) < 0x80 ? 1 : utf8_sequence(s, i);  // multi-byte only
        if (n == 0) return false;
        i += n;
    }
    return true;
}

// Cuts the input at each sep byte: next() returns the pieces in order, then empty views.
class Splitter {
public:
    Splitter(std::string_view in, char sep) : rest_(in), sep_(sep) {}
    bool done() const { return done_; }
    std::string_view next() {
        if (done_) return {};
        std::size_t p = rest_.find(sep_);
        std::string_view piece = rest_.substr(0, p);
        if (p == std::string_view::npos) {
            done_ = true;
            rest_ = {};
        } else {
            rest_.remove_prefix(p + 1);
        }
        return piece;
    }

private:
    std::string_view rest_;
    char sep_;
    bool done_ = false;
};

}  // namespace preflight::fuzz
