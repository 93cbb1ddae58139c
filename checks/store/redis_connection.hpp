// One connection to a Redis that stores shared state for a cluster of relays (quota counters,
// the suppression list), through hiredis 0.14.
//
// What it does that a bare redisContext does not:
// - AUTH: "AUTH USER PASSWORD" (Redis 6 ACL user) or "AUTH PASSWORD" (requirepass), from the
//   credentials the conf read from QuotaStorePasswordFile or SuppressionStorePasswordFile; a
//   refused AUTH is an error naming the node and the user, never the password.
// - Sentinel (redis-sentinel://): asks the sentinels in turn for the master's address
//   (SENTINEL get-master-addr-by-name), connects, checks with ROLE that the node is the master,
//   and when the connection fails, drops, or the node answers READONLY / MASTERDOWN / LOADING
//   (a failover under way), asks again and retries until the store timeout has passed.
// - Bounded: the connect and every reply wait at most the timeout; a node that could not be
//   reached is not tried again for a second, so a dead Redis costs a transaction nothing but the
//   error.
//
// No TLS: Debian 12's hiredis has none; contrib/redis-tls/ runs stunnel between the relays and
// Redis. Not thread-safe: the owner serialises calls (one connection per store, under a mutex).
#pragma once

#include <chrono>
#include <cstdint>
#include <memory>
#include <stdexcept>
#include <string>
#include <vector>

#include "config.hpp"

struct redisContext;
struct redisReply;

namespace preflight {

struct RedisError : std::runtime_error {
    using std::runtime_error::runtime_error;
};

struct RedisReplyFree {
    void operator()(redisReply* r) const noexcept;
};
using RedisReply = std::unique_ptr<redisReply, RedisReplyFree>;

// Where and how to connect: built from a store's QuotaStoreSpec (redis_endpoint).
struct RedisEndpoint {
    std::vector<RedisNode> nodes;  // the Redis itself, or the sentinels when master_name is set
    std::string master_name;       // "": connect to nodes.front() directly
    int db = 0;
    RedisCredentials credentials;           // for the Redis (master); empty: no AUTH
    RedisCredentials sentinel_credentials;  // for the sentinels; empty: no AUTH
    std::chrono::milliseconds timeout{1000};
    std::string name;  // for messages: "redis://127.0.0.1:6379"
};

RedisEndpoint redis_endpoint(const QuotaStoreSpec& spec, const RedisCredentials& credentials,
                             const RedisCredentials& sentinel_credentials, std::chrono::milliseconds timeout);

class RedisConnection {
public:
    explicit RedisConnection(RedisEndpoint endpoint);
    ~RedisConnection();
    RedisConnection(const RedisConnection&) = delete;
    RedisConnection& operator=(const RedisConnection&) = delete;

    // Runs one command, connecting first when needed. Throws RedisError on an error reply (its
    // text), a timeout or a lost connection. In Sentinel mode a command that could not be sent
    // or was refused by a node that is no longer master is retried against the master the
    // sentinels name, within the timeout; one whose connection dropped after it was sent is
    // retried too (a lost reply may count twice: the safe side for a quota).
    RedisReply command(const std::vector<std::string>& args);

    // As command(), then WAIT until `replicas` replicas hold the write (pipelined, one round
    // trip); fewer within the timeout is an error. For writes that a failover must not lose.
    RedisReply replicated_command(const std::vector<std::string>& args, int replicas);

    // As replicated_command(), but only on the connection already open: never connects, never
    // retried on another connection (Sentinel). For the commands after a WATCH or inside a MULTI,
    // which must not run on a new connection where that WATCH or MULTI does not hold: a lost
    // connection (or none) is a RedisError, and the next command() connects again.
    RedisReply same_connection_command(const std::vector<std::string>& args, int replicas = 0);

    // Changes whenever a new connection is made (scripts must be loaded again).
    std::uint64_t connection_id() const { return connection_id_; }
    bool sentinel_mode() const { return !endpoint_.master_name.empty(); }
    const std::string& name() const { return endpoint_.name; }

private:
    struct ContextFree {
        void operator()(redisContext* c) const noexcept;
    };
    using Context = std::unique_ptr<redisContext, ContextFree>;
    using Clock = std::chrono::steady_clock;

    RedisReply run(const std::vector<std::string>& args, int replicas);
    RedisReply attempt(const std::vector<std::string>& args, int replicas, Clock::time_point deadline);
    void connect(Clock::time_point deadline);
    Context open_master(Clock::time_point deadline);
    Context open_node(const RedisNode& node, const RedisCredentials& auth, Clock::time_point deadline,
                      std::string_view what);
    RedisNode ask_sentinel(const RedisNode& sentinel, Clock::time_point deadline);
    void drop(const std::string& why);

    RedisEndpoint endpoint_;
    Context ctx_;
    std::uint64_t connection_id_ = 0;
    std::string last_error_;
    Clock::time_point next_attempt_{};
};

}  // namespace preflight
