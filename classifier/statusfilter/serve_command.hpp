// `preflight-classify serve`: a Postfix socketmap server answering delivery status filter
// lookups (smtp_delivery_status_filter = socketmap:unix:PATH:status).
#pragma once

#include <string>
#include <vector>

namespace preflight {

// Returns the process exit code: 0 stopped by SIGTERM/SIGINT (or --check passed), 1 the server
// could not run (socket, threads), 2 usage, policy or rule file error.
int run_serve_command(const std::vector<std::string>& args);

}  // namespace preflight
