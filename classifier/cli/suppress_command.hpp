// `preflight-classify suppress`: list, add, remove, import, export and stats of the suppression
// list in the conf's SuppressionStore.
#pragma once

#include <string>
#include <vector>

namespace preflight {

// The exit code: 0 done, 1 the store failed or an import record was bad, 2 usage or conf error.
int run_suppress_command(const std::vector<std::string>& args);

}  // namespace preflight
