#pragma once
// Running unprivileged: the identity a daemon started as root switches to after it has opened
// what only root may open (its listening socket). Shared by preflight-milter (UserID) and
// `preflight-classify serve --user`.
#include <sys/types.h>

#include <optional>
#include <string>
#include <string_view>

namespace preflight {

struct RunAs {
    std::string user;
    uid_t uid = 0;
    gid_t gid = 0;
};

struct UserGroup {
    std::string user;
    std::string group;  // "": the user's login group
};

// "USER" or "USER:GROUP", each a name of letters, digits, '_', '-' and '.' not starting with
// '-' (what useradd accepts); nullopt otherwise. The spelling of UserID in the conf and of
// `serve --user`.
std::optional<UserGroup> parse_user_group(std::string_view text);

// USER and GROUP (empty: USER's login group) looked up in the system's databases, while every
// database is still readable. nullopt with `err` set ("no user 'x'", "no group 'y'").
std::optional<RunAs> resolve_run_as(const std::string& user, const std::string& group, std::string& err);

// Supplementary groups, group, then user; afterwards root must be out of reach (setuid(0)
// failing is checked). false with `err` set when any step fails.
bool drop_privileges(const RunAs& who, std::string& err);

}  // namespace preflight
