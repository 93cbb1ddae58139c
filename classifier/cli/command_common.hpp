// What the subcommands of preflight-classify share: loading the shipped and site rules,
// writing to stdout, the number of worker threads, the --format values.
#pragma once

#include <cstddef>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "output.hpp"
#include "rule_set.hpp"

namespace preflight {

// The site rule files (in order) then the shipped ones, compiled. On a broken file prints
// "preflight-classify: FILE:LINE: reason" to stderr and returns nullptr (the caller exits 2).
std::shared_ptr<const RuleSet> load_rules(const std::vector<std::string>& site_files);

// Writes out to stdout (or fd) in full and clears it; on error prints the reason and returns false.
bool write_all(std::string& out);
bool write_all(int fd, std::string& out);

// PREFLIGHT_THREADS if set to a sensible number, else one worker per core.
unsigned worker_count();

// "json", "text", "tsv".
std::optional<Format> parse_format(std::string_view s);
// The ArgParser handler of --format for reply and dsn: sets out, or says what it wants.
std::function<std::optional<std::string>(const std::string&)> format_option(Format& out);

}  // namespace preflight
