#pragma once
// The start-up path both daemons share (preflight-milter and `preflight-classify serve`), in the
// order they take it:
//   1. DaemonSignals: block SIGHUP/SIGTERM/SIGINT before any thread exists;
//   2. DaemonIdentity::decide: who to run as; root is refused unless the operator asked for it;
//   3. open the socket (each daemon its own way: libmilter opens the milter's), then
//      DaemonIdentity::hand_over for what was made as root, and RemoveAtExit for the socket and
//      the PID file;
//   4. DaemonIdentity::drop_privileges;
//   5. DaemonSignals::run: the main thread only takes signals until the daemon is finished; a
//      reload runs on a helper thread and keeps the running state when it fails (the daemon's
//      reload function decides that, and logs why).
#include <signal.h>
#include <sys/types.h>

#include <functional>
#include <optional>
#include <string>
#include <string_view>

#include "run_as.hpp"

namespace preflight {

// How a daemon names its two identity settings, for the messages that refuse to start.
struct IdentityKnobs {
    std::string_view program;    // "preflight-milter"
    std::string_view user_knob;  // "UserID", "--user"
    std::string_view root_knob;  // "RunAsRoot yes", "--run-as-root"
};

class DaemonIdentity {
public:
    // The identity to switch to once the socket is open. Refused (nullopt, err set): running as
    // root without a user unless run_as_root; a user that does not exist; a user other than the
    // current one when not started as root (nothing could switch to it).
    static std::optional<DaemonIdentity> decide(const std::optional<UserGroup>& user, bool run_as_root,
                                                const IdentityKnobs& knobs, std::string& err);

    // Gives a file made while still root to the user (see give_to); nothing to do when the
    // daemon does not switch.
    bool hand_over(const std::string& path, std::string& err, bool missing_ok = false) const;
    bool drop_privileges(std::string& err) const;
    bool switches() const { return run_as_.has_value(); }

private:
    std::optional<RunAs> run_as_;  // nullopt: stays as it started
};

// A file the daemon made (its unix socket, its PID file), removed when this goes out of scope if
// the path still names the same file: a second daemon that replaced it keeps its own.
class RemoveAtExit {
public:
    RemoveAtExit() = default;
    RemoveAtExit(const RemoveAtExit&) = delete;
    RemoveAtExit& operator=(const RemoveAtExit&) = delete;
    ~RemoveAtExit();
    // Remembers the file now at path (nothing if there is none).
    void remember(const std::string& path);

private:
    std::string path_;
    dev_t dev_ = 0;
    ino_t ino_ = 0;
};

class DaemonSignals {
public:
    // Blocks the daemon signals in the calling thread (see block_daemon_signals): construct it
    // before starting any thread, so that every thread inherits the mask.
    DaemonSignals();

    struct Handlers {
        std::function<void()> reload;    // on a helper thread; several SIGHUPs during one make one more
        std::function<void(int)> stop;   // SIGTERM or SIGINT, each time one arrives
        std::function<bool()> finished;  // polled every 100 ms and after each signal
    };
    // Takes signals on the calling thread until finished() is true. Returns the last stop signal
    // taken, 0 if none (the daemon finished by itself).
    int run(const Handlers& handlers) const;

private:
    sigset_t signals_;
};

}  // namespace preflight
