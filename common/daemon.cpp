#include "daemon.hpp"

#include <sys/stat.h>
#include <unistd.h>

#include <condition_variable>
#include <ctime>
#include <mutex>
#include <thread>

namespace preflight {

std::optional<DaemonIdentity> DaemonIdentity::decide(const std::optional<UserGroup>& user, bool run_as_root,
                                                     const IdentityKnobs& knobs, std::string& err) {
    DaemonIdentity identity;
    const bool root = ::geteuid() == 0;
    if (!user) {
        if (root && !run_as_root) {
            err = std::string("refusing to run as root: set ") + std::string(knobs.user_knob) +
                  " (e.g. preflight:postfix; a unix socket is handed to that user) or " + std::string(knobs.root_knob);
            return std::nullopt;
        }
        return identity;
    }
    std::optional<RunAs> who = resolve_run_as(user->user, user->group, err);
    if (!who) {
        err = std::string(knobs.user_knob) + ": " + err;
        return std::nullopt;
    }
    if (!root) {
        // Already that user and group: nothing to switch. Anyone else is out of reach.
        if (who->uid == ::geteuid() && who->gid == ::getegid()) return identity;
        err = std::string(knobs.user_knob) + " " + user->user + " needs " + std::string(knobs.program) +
              " to be started as root";
        return std::nullopt;
    }
    identity.run_as_ = std::move(who);
    return identity;
}

bool DaemonIdentity::hand_over(const std::string& path, std::string& err, bool missing_ok) const {
    return !run_as_ || give_to(path, *run_as_, err, missing_ok);
}

bool DaemonIdentity::drop_privileges(std::string& err) const {
    return !run_as_ || preflight::drop_privileges(*run_as_, err);
}

RemoveAtExit::~RemoveAtExit() {
    struct stat st {};
    if (!path_.empty() && ::lstat(path_.c_str(), &st) == 0 && st.st_dev == dev_ && st.st_ino == ino_)
        ::unlink(path_.c_str());
}

void RemoveAtExit::remember(const std::string& path) {
    struct stat st {};
    if (::lstat(path.c_str(), &st) != 0) return;
    path_ = path;
    dev_ = st.st_dev;
    ino_ = st.st_ino;
}

DaemonSignals::DaemonSignals() : signals_(block_daemon_signals()) {}

int DaemonSignals::run(const Handlers& handlers) const {
    std::mutex mutex;
    std::condition_variable wanted;
    bool reload_pending = false, stopping = false;
    std::thread reloader([&] {
        std::unique_lock lock(mutex);
        for (;;) {
            wanted.wait(lock, [&] { return reload_pending || stopping; });
            if (stopping) return;
            reload_pending = false;
            lock.unlock();
            handlers.reload();
            lock.lock();
        }
    });
    // The main thread leaves sigtimedwait() only for a few instructions: a signal arriving while
    // no thread waits for it would go to whichever thread has it unblocked (libmilter's own
    // signal thread stops the milter at once, dropping what is in flight).
    int last_stop = 0;
    const timespec tick{0, 100'000'000};
    while (!handlers.finished()) {
        int sig = ::sigtimedwait(&signals_, nullptr, &tick);
        if (sig == SIGHUP) {
            std::lock_guard lock(mutex);
            reload_pending = true;
            wanted.notify_one();
        } else if (sig == SIGTERM || sig == SIGINT) {
            last_stop = sig;
            handlers.stop(sig);
        }
    }
    {
        std::lock_guard lock(mutex);
        stopping = true;
        wanted.notify_one();
    }
    reloader.join();
    return last_stop;
}

}  // namespace preflight
