#pragma once
// Running unprivileged: the identity a daemon started as root switches to after it has opened
// what only root may open (its listening socket). Shared by preflight-milter (UserID) and
// `preflight-classify serve --user`.
#include <signal.h>
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

// Gives a file made while still root (a unix socket, a store's files) to who. lchown: a link
// planted at the path is given away itself, never what it points to. A missing file is fine
// when missing_ok. false with `err` set ("cannot give PATH to USER: why").
bool give_to(const std::string& path, const RunAs& who, std::string& err, bool missing_ok = false);

// Writes the process id to path, created 0644. O_NOFOLLOW: written as root, so a symlink planted
// at the path must not be followed to truncate whatever it points at.
bool write_pid_file(const std::string& path, std::string& err);

// The signals both daemons handle on their main thread with sigwait(): SIGHUP (reload), SIGTERM
// and SIGINT (stop). Blocked before any thread starts, so that every thread inherits the mask;
// SIGPIPE is ignored (a peer that went away is an error return, not a death).
sigset_t block_daemon_signals();

}  // namespace preflight
