// What the preflight-classify subcommands share: option values and loading the rules.
#pragma once

#include <cstddef>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "rule_set.hpp"

namespace preflight {

// The value of the option args[i] (i advances past it), or nullptr after writing
// "preflight-classify COMMAND: OPTION needs a value" and the usage to stderr.
const std::string* option_value(const std::vector<std::string>& args, std::size_t& i,
                                std::string_view command, std::string_view usage);

// The site rule files (in order, before the shipped rules) compiled with the shipped rules, or
// nullptr after writing "preflight-classify: FILE:LINE: reason" to stderr (exit status 2).
std::shared_ptr<const RuleSet> load_rules(const std::vector<std::string>& site_files);

}  // namespace preflight
