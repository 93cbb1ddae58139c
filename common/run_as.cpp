#include "run_as.hpp"

#include <grp.h>
#include <pwd.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

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

}  // namespace preflight
