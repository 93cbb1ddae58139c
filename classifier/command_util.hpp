// Helpers shared by the preflight-classify subcommands.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "rule_set.hpp"

namespace preflight {

// Writes all of out to fd and clears it; on failure prints "preflight-classify: write error"
// to stderr and returns false.
bool write_all(int fd, std::string& out);

// Site rule files (in order, before the shipped rules) compiled into one RuleSet; on failure
// prints the RuleError ("FILE:LINE: reason") to stderr and returns nullptr.
std::shared_ptr<const RuleSet> load_rules(const std::vector<std::string>& site_files);

}  // namespace preflight
