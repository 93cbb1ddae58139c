// ArgParser: the one argument parser of preflight-classify's subcommands. Each command declares
// its options as a table (flags, options with a value, positionals) with what to do with each;
// the parser handles -h/--help, "--", unknown options and missing values in one place, and every
// error reads "preflight-classify COMMAND: OPTION VALUE: why" with exit status 2.
#pragma once

#include <charconv>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace preflight {

class ArgParser {
public:
    // Takes the value; returns the error ("want json, text or tsv"), or nothing when it is good.
    using ValueHandler = std::function<std::optional<std::string>(const std::string&)>;

    ArgParser(std::string_view command, std::string_view usage) : command_(command), usage_(usage) {}

    // names: the spellings, e.g. {"--output", "-o"}.
    ArgParser& flag(std::vector<std::string> names, std::function<void()> on);
    ArgParser& option(std::vector<std::string> names, ValueHandler on);
    // Words that are not options (and everything after "--"). Without it, a word is an error.
    ArgParser& positional(std::function<void(const std::string&)> on);

    // Nothing to go on with the command; else the status to exit with (0 after --help, 2 on an
    // error, which has been written to stderr with the usage where it helps).
    std::optional<int> parse(const std::vector<std::string>& args) const;

    // "preflight-classify COMMAND: what" on stderr; returns 2, the usage-error status.
    int error(const std::string& what) const;

private:
    struct Entry {
        std::vector<std::string> names;
        bool takes_value = false;
        std::function<void()> on_flag;
        ValueHandler on_value;
    };
    const Entry* find(std::string_view name) const;

    std::string command_;
    std::string usage_;
    std::vector<Entry> entries_;
    std::function<void(const std::string&)> on_positional_;
};

// Handlers for the common cases: a value kept, a value added to a list, a whole number within
// [lo, hi] (base 8 for a file mode); want is what the error says is wanted.
inline ArgParser::ValueHandler store_in(std::string& out) {
    return [&out](const std::string& v) -> std::optional<std::string> {
        out = v;
        return std::nullopt;
    };
}

inline ArgParser::ValueHandler append_to(std::vector<std::string>& out) {
    return [&out](const std::string& v) -> std::optional<std::string> {
        out.push_back(v);
        return std::nullopt;
    };
}

template <class T>
ArgParser::ValueHandler whole_number(T& out, unsigned long long lo, unsigned long long hi, std::string want,
                                     int base = 10) {
    return [&out, lo, hi, want = std::move(want), base](const std::string& v) -> std::optional<std::string> {
        unsigned long long n = 0;
        auto [end, ec] = std::from_chars(v.data(), v.data() + v.size(), n, base);
        if (v.empty() || ec != std::errc() || end != v.data() + v.size() || n < lo || n > hi) return "want " + want;
        out = static_cast<T>(n);
        return std::nullopt;
    };
}

}  // namespace preflight
