// QuotaStorePasswordFile and QuotaStoreSentinelPasswordFile: Redis credentials from a file of
// their own, so the conf (world-readable as shipped, quoted in bug reports) never holds them.
// Read when the conf is loaded (as root at start, as UserID on a reload: the file's group is
// preflight's), so `preflight-milter -n` finds a missing, unreadable or too open file.
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>

#include "config.hpp"
#include "unique_fd.hpp"

namespace preflight {
namespace {

constexpr std::size_t kMaxCredentialsFile = 4096;  // a user name and a password

std::string octal_mode(mode_t mode) {
    char buf[8];
    std::snprintf(buf, sizeof buf, "%04o", static_cast<unsigned>(mode & 07777));
    return buf;
}

// The file's one line, without its line end; nullopt with why for anything else.
std::optional<std::string> one_line(std::string text, std::string& why) {
    if (text.ends_with("\n")) text.pop_back();
    if (text.ends_with("\r")) text.pop_back();
    if (text.empty()) {
        why = "is empty (give USER:PASSWORD or PASSWORD on one line)";
        return std::nullopt;
    }
    for (char c : text) {
        if (c == '\n' || c == '\r') {
            why = "holds more than one line (give USER:PASSWORD or PASSWORD on one line)";
            return std::nullopt;
        }
        if (static_cast<unsigned char>(c) < 0x20 || c == 0x7f) {
            why = "holds a control character (give USER:PASSWORD or PASSWORD on one line)";
            return std::nullopt;
        }
    }
    return text;
}

}  // namespace

std::optional<RedisCredentials> read_redis_credentials(const std::string& path, std::string* why) {
    std::string quoted = "\"" + path + "\"";
    auto fail = [&](const std::string& text) -> std::optional<RedisCredentials> {
        if (why) *why = quoted + " " + text;
        return std::nullopt;
    };
    // One inode from the check to the read: opened first (O_NONBLOCK: a FIFO must not block
    // `-n`), then checked with fstat, then read.
    UniqueFd fd(::open(path.c_str(), O_RDONLY | O_NONBLOCK | O_CLOEXEC));
    if (!fd) return fail(std::string("cannot be read: ") + std::strerror(errno));
    struct stat st {};
    if (::fstat(fd.get(), &st) != 0) return fail(std::string("cannot be read: ") + std::strerror(errno));
    if (!S_ISREG(st.st_mode)) return fail("is not a regular file");
    if (st.st_mode & (S_IROTH | S_IWOTH))
        return fail("is open to every user (mode " + octal_mode(st.st_mode) +
                    "): it holds a password; chmod 0640 and give it to group preflight");
    std::string text(kMaxCredentialsFile + 1, '\0');
    std::size_t got = 0;
    while (got < text.size()) {
        ssize_t n = ::read(fd.get(), text.data() + got, text.size() - got);
        if (n < 0 && errno == EINTR) continue;
        if (n < 0) return fail(std::string("cannot be read: ") + std::strerror(errno));
        if (n == 0) break;
        got += static_cast<std::size_t>(n);
    }
    text.resize(got);
    if (text.size() > kMaxCredentialsFile) return fail("is too large to hold a user and a password");
    std::string problem;
    auto line = one_line(std::move(text), problem);
    if (!line) return fail(problem);
    RedisCredentials c;
    c.file = path;
    auto colon = line->find(':');
    if (colon == std::string::npos) {
        c.password = std::move(*line);
    } else {
        c.user = line->substr(0, colon);
        c.password = line->substr(colon + 1);
        if (c.user.empty() || c.password.empty())
            return fail("has an empty user or password around ':' (USER:PASSWORD, or default:PASSWORD)");
    }
    return c;
}

}  // namespace preflight
