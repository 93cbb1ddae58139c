// The HTTP end of the metrics: GET /metrics answers Registry::render(); every other path is a
// 404. cpp-httplib does the HTTP on a thread of its own with a small, bounded pool: two
// workers, a short queue (the accept loop waits when it is full, then the kernel's backlog),
// five-second read and write timeouts, one request per connection.
//
// Start-up is in two steps so that a daemon can bind (and report a busy port on stderr) before
// it forks, and start the threads after: the constructor binds, start() serves.
#pragma once

#include <cstdint>
#include <memory>
#include <string>

#include "socket_address.hpp"
#include "metrics.hpp"

namespace preflight::metrics {

class Server {
public:
    // Binds where says (port 0: any free port, for tests). Throws std::runtime_error
    // ("cannot listen on 127.0.0.1:9465: Address already in use"). Sets SIGPIPE to ignored.
    Server(const Registry& registry, const ListenAddress& where);
    ~Server();  // stop()
    Server(const Server&) = delete;
    Server& operator=(const Server&) = delete;

    void start();  // serves on a thread of its own; call once
    // Stops accepting, lets the requests being served finish (bounded by the timeouts), joins.
    // Idempotent.
    void stop();

    std::uint16_t port() const;  // the bound port
    std::string where() const;   // "127.0.0.1:9465"

private:
    struct Impl;
    std::unique_ptr<Impl> impl_;
};

}  // namespace preflight::metrics
