#include "staged_output.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <vector>

#include "command_common.hpp"

namespace preflight {
namespace {

mode_t current_umask() {
    mode_t m = ::umask(0);
    ::umask(m);
    return m;
}

// mkostemp on "PREFIX-XXXXXX": the path made, or "" (errno set).
std::string make_temp(const std::string& prefix, int& fd) {
    std::string tmpl = prefix + "XXXXXX";
    std::vector<char> name(tmpl.begin(), tmpl.end());
    name.push_back('\0');
    fd = ::mkostemp(name.data(), O_CLOEXEC);
    return fd < 0 ? std::string() : std::string(name.data());
}

}  // namespace

StagedOutput::~StagedOutput() {
    if (!temp_path_.empty()) ::unlink(temp_path_.c_str());
}

bool StagedOutput::open(const std::string& output, bool follow, bool xlsx, std::string& error) {
    xlsx_path_ = output;
    if (!output.empty() && !follow) {
        int fd = -1;
        temp_path_ = make_temp(output + ".tmp-", fd);
        if (temp_path_.empty()) {
            error = output + ": cannot create a file beside it: " + std::strerror(errno);
            return false;
        }
        ::fchmod(fd, 0666 & ~current_umask());
        final_path_ = output;
        file_.reset(fd);
        if (xlsx) {
            file_.reset();
            xlsx_path_ = temp_path_;
        }
    } else if (xlsx) {
        if (xlsx_path_.empty()) {
            const char* tmpdir = std::getenv("TMPDIR");
            std::string prefix = std::string(tmpdir && *tmpdir ? tmpdir : "/tmp") + "/preflight-log-";
            int fd = -1;
            temp_path_ = make_temp(prefix, fd);
            if (temp_path_.empty()) {
                error = "cannot create a temporary file in " + prefix + "XXXXXX: " + std::strerror(errno);
                return false;
            }
            ::close(fd);
            xlsx_path_ = temp_path_;
            xlsx_to_stdout_ = true;
        }
    } else if (!output.empty()) {  // --follow: rows appear in FILE as they become final
        file_.reset(::open(output.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0666));
        if (!file_) {
            error = output + ": " + std::strerror(errno);
            return false;
        }
    }
    return true;
}

bool StagedOutput::finish(bool rows_ok, std::string& error) {
    if (!rows_ok) {
        if (!final_path_.empty()) error = final_path_ + ": not written (the rows could not all be written)";
        return false;
    }
    if (!final_path_.empty()) {
        if (file_ && ::fsync(file_.get()) != 0) {
            error = final_path_ + ": " + std::strerror(errno);
            return false;
        }
        if (::rename(temp_path_.c_str(), final_path_.c_str()) != 0) {
            error = final_path_ + ": " + std::strerror(errno);
            return false;
        }
        temp_path_.clear();
        return true;
    }
    if (!xlsx_to_stdout_) return true;
    UniqueFd in(::open(temp_path_.c_str(), O_RDONLY | O_CLOEXEC));
    if (!in) {
        error = temp_path_ + ": " + std::strerror(errno);
        return false;
    }
    std::string chunk(1 << 16, '\0');
    for (;;) {
        ssize_t n = ::read(in.get(), chunk.data(), chunk.size());
        if (n < 0 && errno == EINTR) continue;
        if (n < 0) {
            error = temp_path_ + ": " + std::strerror(errno);
            return false;
        }
        if (n == 0) return true;
        std::string piece(chunk.data(), static_cast<std::size_t>(n));
        if (!write_all(STDOUT_FILENO, piece)) return false;  // write_all printed why
    }
}

}  // namespace preflight
