#include "metrics_server.hpp"

#include <httplib.h>
#include <signal.h>
#include <sys/socket.h>

#include <cerrno>
#include <chrono>
#include <condition_variable>
#include <cstring>
#include <deque>
#include <functional>
#include <mutex>
#include <stdexcept>
#include <thread>
#include <vector>

namespace preflight::metrics {

namespace {

constexpr std::size_t kWorkers = 2;
constexpr std::size_t kMaxQueued = 8;  // accepted connections waiting for a worker
constexpr time_t kTimeoutSeconds = 5;

// httplib's own ThreadPool queues without limit. This one makes the accept loop wait while
// kMaxQueued connections are waiting, so that a flood stays in the kernel's small backlog.
class BoundedPool final : public httplib::TaskQueue {
public:
    explicit BoundedPool(std::size_t workers) {
        for (std::size_t i = 0; i < workers; ++i) threads_.emplace_back([this] { work(); });
    }
    ~BoundedPool() override { shutdown(); }

    void enqueue(std::function<void()> fn) override {
        std::unique_lock lock(mutex_);
        room_.wait(lock, [&] { return jobs_.size() < kMaxQueued || shutdown_; });
        jobs_.push_back(std::move(fn));
        ready_.notify_one();
    }

    void shutdown() override {
        {
            std::lock_guard lock(mutex_);
            if (shutdown_ && threads_.empty()) return;
            shutdown_ = true;
        }
        ready_.notify_all();
        room_.notify_all();
        for (auto& t : threads_) t.join();
        threads_.clear();
    }

private:
    void work() {
        for (;;) {
            std::function<void()> fn;
            {
                std::unique_lock lock(mutex_);
                ready_.wait(lock, [&] { return !jobs_.empty() || shutdown_; });
                if (jobs_.empty()) return;  // shut down and drained: every job closes its socket
                fn = std::move(jobs_.front());
                jobs_.pop_front();
            }
            room_.notify_one();
            fn();
        }
    }

    std::mutex mutex_;
    std::condition_variable ready_, room_;
    std::deque<std::function<void()>> jobs_;
    bool shutdown_ = false;
    std::vector<std::thread> threads_;
};

}  // namespace

struct Server::Impl {
    const Registry& registry;
    ListenAddress where;
    httplib::Server http;
    std::thread thread;
    std::mutex stop_mutex;
    bool stopped = false;

    Impl(const Registry& r, ListenAddress w) : registry(r), where(std::move(w)) {}
};

Server::Server(const Registry& registry, const ListenAddress& where) : impl_(std::make_unique<Impl>(registry, where)) {
    // A scraper that hangs up mid-answer must not kill the daemon: writes then fail with EPIPE.
    ::signal(SIGPIPE, SIG_IGN);
    httplib::Server& http = impl_->http;
    // httplib takes ownership of the queue it is handed (it deletes it after listening).
    http.new_task_queue = [] { return std::make_unique<BoundedPool>(kWorkers).release(); };
    http.set_read_timeout(kTimeoutSeconds, 0);
    http.set_write_timeout(kTimeoutSeconds, 0);
    http.set_keep_alive_max_count(1);  // a scrape is one request; no idle connections to wait for
    http.set_keep_alive_timeout(1);
    http.set_payload_max_length(4096);
    // httplib's default also sets SO_REUSEPORT, which would let a second daemon bind the same
    // port and take half the scrapes instead of failing with "Address already in use".
    http.set_socket_options([](socket_t sock) {
        int one = 1;
        ::setsockopt(sock, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    });
    // All requests are answered here, before httplib's (regex-based) router.
    const Registry* reg = &impl_->registry;
    http.set_pre_routing_handler([reg](const httplib::Request& req, httplib::Response& res) {
        if (req.path != "/metrics") {
            res.status = 404;
            res.set_content("not found; try /metrics\n", "text/plain");
        } else if (req.method != "GET" && req.method != "HEAD") {
            res.status = 405;
            res.set_header("Allow", "GET, HEAD");
            res.set_content("method not allowed\n", "text/plain");
        } else {
            res.status = 200;
            res.set_content(reg->render(), std::string(kContentType));
        }
        return httplib::Server::HandlerResponse::Handled;
    });
    http.set_exception_handler([](const httplib::Request&, httplib::Response& res, std::exception_ptr) {
        res.status = 500;
        res.set_content("internal error\n", "text/plain");
    });

    bool ok;
    int port = where.port;
    errno = 0;
    if (where.port == 0) {
        port = http.bind_to_any_port(where.host);
        ok = port > 0;
    } else {
        ok = http.bind_to_port(where.host, where.port);
    }
    if (!ok) {
        int e = errno;
        std::string msg = "cannot listen on ";
        msg += where.to_string();
        if (e) {
            msg += ": ";
            msg += std::strerror(e);
        }
        throw std::runtime_error(msg);
    }
    impl_->where.port = static_cast<std::uint16_t>(port);
}

Server::~Server() { stop(); }

void Server::start() {
    impl_->thread = std::thread([this] { impl_->http.listen_after_bind(); });
    // Until the thread runs, httplib's stop() would have nothing to stop and the join in
    // stop() would wait for ever: wait (briefly) until it listens.
    for (int i = 0; i < 5000 && !impl_->http.is_running(); ++i)
        std::this_thread::sleep_for(std::chrono::milliseconds(1));
}

void Server::stop() {
    std::lock_guard lock(impl_->stop_mutex);
    if (impl_->stopped) return;
    impl_->stopped = true;
    impl_->http.stop();
    if (impl_->thread.joinable()) impl_->thread.join();
}

std::uint16_t Server::port() const { return impl_->where.port; }

std::string Server::where() const { return impl_->where.to_string(); }

}  // namespace preflight::metrics
