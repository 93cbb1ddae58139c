// Reading log files line by line: plain files, gzip files (by their magic bytes, whatever the
// name) and stdin (plain or gzip), in a fixed buffer; lines longer than kMaxLogLine are
// reported as too long and skipped, so memory stays constant whatever the input.
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

namespace preflight {

constexpr std::size_t kMaxLogLine = 64 * 1024;

class LogInput {
public:
    virtual ~LogInput() = default;
    // Bytes read (0 at end of file, for now: a growing file may have more later); -1 on error,
    // with error set.
    virtual long read(char* buf, std::size_t n, std::string& error) = 0;
    // For plain files: identity and position, to notice rotation and truncation.
    virtual bool plain() const { return false; }
    virtual dev_t device() const { return 0; }
    virtual ino_t inode() const { return 0; }
    virtual std::int64_t offset() const { return 0; }
    // Back to the start (a plain file that was truncated).
    virtual bool rewind() { return false; }
    // Modification time of the file; now for stdin.
    virtual std::int64_t mtime() const = 0;

    // path "-" is stdin. nullptr and error set when it cannot be opened.
    static std::unique_ptr<LogInput> open(const std::string& path, std::string& error);
};

// Splits what a LogInput delivers into lines (without "\n" or a final "\r").
class LineSplitter {
public:
    // too_long: the line exceeded kMaxLogLine and line is empty.
    using OnLine = std::function<void(std::string_view line, bool too_long)>;
    LineSplitter();

    // Reads until the input has nothing more for now. 0 at end of data, -1 on a read error.
    int pump(LogInput& in, const OnLine& on_line, std::string& error);
    // The input is finished (or replaced): a last line without "\n" is handed over.
    void finish(const OnLine& on_line);

private:
    void emit(std::string_view line, const OnLine& on_line);

    std::vector<char> buf_;
    std::size_t start_ = 0, scan_ = 0, end_ = 0;  // line start, scanned up to, data end
    bool skipping_ = false;                       // inside a too-long line
};

}  // namespace preflight
