#include "log_reader.hpp"

#include "unique_fd.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

#include <cerrno>
#include <cstring>
#include <ctime>

namespace preflight {
namespace {

constexpr std::size_t kBuffer = 1 << 20;

class PlainInput final : public LogInput {
public:
    PlainInput(int fd, const struct stat& st) : fd_(fd), st_(st) {}
    long read(char* buf, std::size_t n, std::string& error) override {
        for (;;) {
            ssize_t r = ::read(fd_.get(), buf, n);
            if (r >= 0) {
                offset_ += r;
                return static_cast<long>(r);
            }
            if (errno == EINTR) continue;
            error = std::strerror(errno);
            return -1;
        }
    }
    bool plain() const override { return true; }
    dev_t device() const override { return st_.st_dev; }
    ino_t inode() const override { return st_.st_ino; }
    std::int64_t offset() const override { return offset_; }
    bool rewind() override {
        if (::lseek(fd_.get(), 0, SEEK_SET) != 0) return false;
        offset_ = 0;
        return true;
    }
    std::int64_t mtime() const override { return st_.st_mtime; }

private:
    UniqueFd fd_;
    struct stat st_;
    std::int64_t offset_ = 0;
};

class GzInput final : public LogInput {
public:
    GzInput(gzFile gz, std::int64_t mtime) : gz_(gz), mtime_(mtime) {}
    long read(char* buf, std::size_t n, std::string& error) override {
        int r = gzread(gz_.get(), buf, static_cast<unsigned>(n));
        if (r < 0) {
            int code = 0;
            const char* msg = gzerror(gz_.get(), &code);
            error = code == Z_ERRNO ? std::strerror(errno) : std::string("gzip: ") + (msg ? msg : "error");
            return -1;
        }
        if (r == 0) {  // a truncated gzip file ends without its trailer: an error, not EOF
            int code = 0;
            const char* msg = gzerror(gz_.get(), &code);
            if (code != Z_OK && code != Z_BUF_ERROR) {
                error = std::string("gzip: ") + (msg ? msg : "error");
                return -1;
            }
            if (code == Z_BUF_ERROR) {
                error = "gzip: unexpected end of file (truncated archive)";
                return -1;
            }
        }
        return r;
    }
    std::int64_t mtime() const override { return mtime_; }

private:
    struct Close {
        void operator()(gzFile g) const { gzclose(g); }
    };
    std::unique_ptr<gzFile_s, Close> gz_;
    std::int64_t mtime_;
};

}  // namespace

std::unique_ptr<LogInput> LogInput::open(const std::string& path, std::string& error) {
    if (path == "-") {
        UniqueFd fd(::dup(STDIN_FILENO));
        if (fd.get() < 0) {
            error = std::string("stdin: ") + std::strerror(errno);
            return nullptr;
        }
        gzFile gz = gzdopen(fd.get(), "rb");
        if (!gz) {
            error = "stdin: cannot set up reading";
            return nullptr;
        }
        fd.release();
        gzbuffer(gz, 256 * 1024);
        return std::make_unique<GzInput>(gz, static_cast<std::int64_t>(std::time(nullptr)));
    }
    UniqueFd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
    if (fd.get() < 0) {
        error = path + ": " + std::strerror(errno);
        return nullptr;
    }
    struct stat st {};
    if (::fstat(fd.get(), &st) != 0) {
        error = path + ": " + std::strerror(errno);
        return nullptr;
    }
    if (S_ISDIR(st.st_mode)) {
        error = path + ": is a directory";
        return nullptr;
    }
    unsigned char magic[2] = {0, 0};
    ssize_t got = ::pread(fd.get(), magic, 2, 0);
    if (got == 2 && magic[0] == 0x1f && magic[1] == 0x8b) {
        gzFile gz = gzdopen(fd.get(), "rb");
        if (!gz) {
            error = path + ": cannot set up gzip reading";
            return nullptr;
        }
        fd.release();
        gzbuffer(gz, 256 * 1024);
        return std::make_unique<GzInput>(gz, static_cast<std::int64_t>(st.st_mtime));
    }
    int raw = fd.release();
    return std::make_unique<PlainInput>(raw, st);
}

LineSplitter::LineSplitter() : buf_(kBuffer) {}

void LineSplitter::emit(std::string_view line, const OnLine& on_line) {
    if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
    on_line(line, false);
}

int LineSplitter::pump(LogInput& in, const OnLine& on_line, std::string& error) {
    for (;;) {
        if (end_ == buf_.size()) {  // make room: move the partial line to the front
            std::size_t partial = end_ - start_;
            std::memmove(buf_.data(), buf_.data() + start_, partial);
            scan_ -= start_;
            start_ = 0;
            end_ = partial;
        }
        long n = in.read(buf_.data() + end_, buf_.size() - end_, error);
        if (n < 0) return -1;
        if (n == 0) return 0;
        end_ += static_cast<std::size_t>(n);
        const char* base = buf_.data();
        while (scan_ < end_) {
            const void* nl = std::memchr(base + scan_, '\n', end_ - scan_);
            if (!nl) {
                scan_ = end_;
                break;
            }
            std::size_t pos = static_cast<std::size_t>(static_cast<const char*>(nl) - base);
            if (skipping_ || pos - start_ > kMaxLogLine) {
                skipping_ = false;
                on_line({}, true);
            } else {
                emit(std::string_view(base + start_, pos - start_), on_line);
            }
            start_ = scan_ = pos + 1;
        }
        if (end_ - start_ > kMaxLogLine) {  // drop the line's bytes until its end shows up
            skipping_ = true;
            start_ = scan_ = end_ = 0;
        } else if (start_ == end_) {
            start_ = scan_ = end_ = 0;
        }
    }
}

void LineSplitter::finish(const OnLine& on_line) {
    if (skipping_) on_line({}, true);
    else if (end_ > start_) emit(std::string_view(buf_.data() + start_, end_ - start_), on_line);
    start_ = scan_ = end_ = 0;
    skipping_ = false;
}

}  // namespace preflight
