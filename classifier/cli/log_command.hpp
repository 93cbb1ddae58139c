// `preflight-classify log`: Postfix logs in, one row per recipient with its final state out.
#pragma once

#include <functional>
#include <string>
#include <vector>

#include "dsn_join.hpp"

namespace preflight {

// Reads the bounce reports (DSNs) in dir and appends one record per failed recipient to out;
// false with error set ("FILE: reason") when dir or a report cannot be read.
using DsnLoader = std::function<bool(const std::string& dir, std::vector<DsnRecord>& out, std::string& error)>;

// Returns the exit code: 0 every line read, 1 bad input lines, unreadable input or write
// errors (rows are still written for what could be read), 2 usage or rule file errors.
// load_dsn serves --dsn DIR (repeatable); without it --dsn is a usage error. The records are
// joined to the rows as dsn_join.hpp says.
int run_log_command(const std::vector<std::string>& args, const DsnLoader& load_dsn = {});

}  // namespace preflight
