// StagedOutput: where `log` writes its rows, so that a failed run never leaves a partial file
// under the name the user asked for. --output FILE is written to a temporary file beside it and
// renamed over FILE only when every row was written (an older FILE stays as it was on failure);
// --follow writes FILE directly (rows appear as they become final); xlsx to stdout is written to
// a temporary file (libxlsxwriter needs a path) and copied out at the end.
#pragma once

#include <string>

#include "unique_fd.hpp"

namespace preflight {

class StagedOutput {
public:
    StagedOutput() = default;
    StagedOutput(const StagedOutput&) = delete;
    StagedOutput& operator=(const StagedOutput&) = delete;
    ~StagedOutput();

    // output: --output's file or "" for stdout. On failure error says why (a message for stderr).
    bool open(const std::string& output, bool follow, bool xlsx, std::string& error);
    // Where CSV and JSON rows go (stdout, the temporary file or FILE).
    int fd() const { return file_ ? file_.get() : 1; }
    // Where libxlsxwriter writes (only with xlsx).
    const std::string& xlsx_path() const { return xlsx_path_; }
    // After the writer closed, with whether every row was written: fsync and rename, or copy the
    // xlsx to stdout. False (error says why) when the output is not complete where it should be.
    bool finish(bool rows_ok, std::string& error);

private:
    std::string final_path_;  // --output FILE, when staged
    std::string temp_path_;   // the staged file, or the xlsx written for stdout
    std::string xlsx_path_;
    bool xlsx_to_stdout_ = false;
    UniqueFd file_;
};

}  // namespace preflight
