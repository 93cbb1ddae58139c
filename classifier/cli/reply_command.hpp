// `preflight-classify reply`: classify replies given as arguments or read from stdin.
#pragma once

#include <string>
#include <vector>

namespace preflight {

// Returns the process exit code: 0 every reply classified, 1 some not, 2 usage or rule errors.
int run_reply_command(const std::vector<std::string>& args);

}  // namespace preflight
