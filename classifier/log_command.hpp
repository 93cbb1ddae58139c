// `preflight-classify log`: Postfix logs in, one row per recipient with its final state out.
#pragma once

#include <string>
#include <vector>

#include "dsn_join.hpp"

namespace preflight {

// Returns the exit code: 0 every line read, 1 bad input lines, unreadable input or write
// errors (rows are still written for what could be read), 2 usage or rule file errors.
// dsn: bounce reports to join to the rows (see dsn_join.hpp); empty for none.
int run_log_command(const std::vector<std::string>& args, std::vector<DsnRecord> dsn = {});

}  // namespace preflight
