#include "run_as.hpp"

#include <fcntl.h>
#include <grp.h>
#include <pthread.h>
#include <pwd.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

#include "unique_fd.hpp"

namespace preflight {

namespace {

bool valid_name(std::string_view s) {
    return !s.empty() && s.front() != '-' && std::all_of(s.begin(), s.end(), [](char c) {
        return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' || c == '-' ||
               c == '.';
    });
}

}  // namespace

std::optional<UserGroup> parse_user_group(std::string_view text) {
    const std::size_t colon = text.find(':');
    UserGroup ug{std::string(text.substr(0, colon)),
                 colon == std::string_view::npos ? std::string() : std::string(text.substr(colon + 1))};
    if (!valid_name(ug.user) || (colon != std::string_view::npos && !valid_name(ug.group))) return std::nullopt;
    return ug;
}

std::optional<RunAs> resolve_run_as(const std::string& user, const std::string& group, std::string& err) {
    const passwd* pw = ::getpwnam(user.c_str());
    if (!pw) {
        err = "no user '" + user + "'";
        return std::nullopt;
    }
    RunAs who{pw->pw_name, pw->pw_uid, pw->pw_gid};
    if (!group.empty()) {
        const struct group* gr = ::getgrnam(group.c_str());
        if (!gr) {
            err = "no group '" + group + "'";
            return std::nullopt;
        }
        who.gid = gr->gr_gid;
    }
    return who;
}

bool drop_privileges(const RunAs& who, std::string& err) {
    if (::initgroups(who.user.c_str(), who.gid) != 0 || ::setgid(who.gid) != 0 || ::setuid(who.uid) != 0) {
        err = "cannot become " + who.user + ": " + std::strerror(errno);
        return false;
    }
    if (who.uid != 0 && ::setuid(0) == 0) {
        err = "still able to become root after switching to " + who.user;
        return false;
    }
    return true;
}

bool give_to(const std::string& path, const RunAs& who, std::string& err, bool missing_ok) {
    if (::lchown(path.c_str(), who.uid, who.gid) == 0 || (missing_ok && errno == ENOENT)) return true;
    err = "cannot give " + path + " to " + who.user + ": " + std::strerror(errno);
    return false;
}

bool write_pid_file(const std::string& path, std::string& err) {
    UniqueFd fd(::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_NOFOLLOW | O_CLOEXEC, 0644));
    std::string text = std::to_string(::getpid()) + "\n";
    if (!fd || ::write(fd.get(), text.data(), text.size()) != static_cast<ssize_t>(text.size())) {
        err = "cannot write " + path + ": " + std::strerror(errno);
        return false;
    }
    return true;
}

sigset_t block_daemon_signals() {
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGHUP);
    sigaddset(&set, SIGTERM);
    sigaddset(&set, SIGINT);
    ::pthread_sigmask(SIG_BLOCK, &set, nullptr);
    ::signal(SIGPIPE, SIG_IGN);
    return set;
}

}  // namespace preflight
