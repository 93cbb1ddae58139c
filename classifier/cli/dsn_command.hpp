// `preflight-classify dsn`: classify bounce messages (files, directories, maildirs, mboxes,
// stdin) into one record per failed or delayed recipient.
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "dsn_join.hpp"

namespace preflight {

// Returns the process exit code: 0 every input read, 1 some input failed, 2 usage or rule errors.
int run_dsn_command(const std::vector<std::string>& args);

// The messages of an mbox (split at "From " lines, which are dropped); a file that does not
// start with "From " is one message, returned whole.
std::vector<std::string_view> split_mbox(std::string_view data);

// For `log --dsn DIR`: reads the bounce messages under dir (as `dsn` reads a directory) and
// appends one record per failed or expired recipient; delay notices, auto-replies and feedback
// reports are no failures and give none. False with error set ("FILE: reason") when dir or a
// message cannot be read; the records of the others are still appended.
bool load_dsn_records(const std::string& dir, std::vector<DsnRecord>& out, std::string& error);

}  // namespace preflight
