#include "redis_connection.hpp"

#include <hiredis/hiredis.h>
#include <sys/time.h>

#include <algorithm>
#include <cerrno>
#include <thread>
#include <tuple>
#include <utility>

namespace preflight {
namespace {

using namespace std::chrono_literals;

constexpr std::chrono::milliseconds kRetryPause{100};  // between attempts in Sentinel mode

// A failure after which the same command may be tried again on a new connection: none was
// made, it dropped, or the node is no longer the master. Only Sentinel mode retries.
struct RetryableError : RedisError {
    using RedisError::RedisError;
};

timeval to_timeval(std::chrono::milliseconds d) {
    d = std::max(d, std::chrono::milliseconds(1));
    timeval tv{};
    tv.tv_sec = static_cast<time_t>(d.count() / 1000);
    tv.tv_usec = static_cast<suseconds_t>((d.count() % 1000) * 1000);
    return tv;
}

std::string node_text(const RedisNode& n) {
    std::string host = n.host.find(':') != std::string::npos ? "[" + n.host + "]" : n.host;
    return host + ":" + std::to_string(n.port);
}

std::chrono::milliseconds left(std::chrono::steady_clock::time_point deadline) {
    return std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now());
}

// hiredis's argv form of a command: pointers into args, which must outlive it.
struct Argv {
    std::vector<const char*> ptrs;
    std::vector<std::size_t> lens;
    explicit Argv(const std::vector<std::string>& args) {
        for (const std::string& a : args) {
            ptrs.push_back(a.data());
            lens.push_back(a.size());
        }
    }
    int count() const { return static_cast<int>(ptrs.size()); }
};

// One command on a context; nullptr when the transport failed (c->errstr says why).
RedisReply send(redisContext* c, const std::vector<std::string>& args) {
    Argv argv(args);
    return RedisReply(static_cast<redisReply*>(redisCommandArgv(c, argv.count(), argv.ptrs.data(), argv.lens.data())));
}

// The command and "WAIT replicas wait_ms" in one round trip; both replies are read to keep the
// stream in step. Both null when either could not be read (the connection is out of step).
std::pair<RedisReply, RedisReply> send_and_wait(redisContext* c, const std::vector<std::string>& args, int replicas,
                                                std::int64_t wait_ms) {
    Argv argv(args);
    void* r1 = nullptr;
    void* r2 = nullptr;
    if (redisAppendCommandArgv(c, argv.count(), argv.ptrs.data(), argv.lens.data()) == REDIS_OK &&
        redisAppendCommand(c, "WAIT %d %lld", replicas, static_cast<long long>(wait_ms)) == REDIS_OK &&
        redisGetReply(c, &r1) == REDIS_OK)
        redisGetReply(c, &r2);
    RedisReply reply(static_cast<redisReply*>(r1)), acks(static_cast<redisReply*>(r2));
    if (!acks) reply.reset();
    return {std::move(reply), std::move(acks)};
}

// WAIT's own timeout: what is left of the deadline less a margin, so that Redis answers WAIT
// (checked on its 100 ms clock) before hiredis gives up reading and drops the connection.
std::chrono::milliseconds wait_budget(std::chrono::steady_clock::time_point deadline) {
    return std::max(left(deadline) - std::chrono::milliseconds(250), std::chrono::milliseconds(1));
}

std::string reply_text(const redisReply* r) { return std::string(r->str, r->len); }

// hiredis reports a read timeout as EAGAIN's text; say what it means.
std::string transport_error(const redisContext* c, std::chrono::milliseconds timeout) {
    if (!c->err) return "no reply";
    if (c->err == REDIS_ERR_IO && (errno == EAGAIN || errno == EWOULDBLOCK))
        return "no reply within " + std::to_string(timeout.count()) + " ms";
    return c->errstr;
}

// Error replies that mean "not here, not now": the node was demoted, its master is down, or it
// is still loading its data after a restart. The command did not run.
bool not_master_error(std::string_view text) {
    return text.starts_with("READONLY") || text.starts_with("MASTERDOWN") || text.starts_with("LOADING");
}

// A reply to a setup command (AUTH, SELECT, ROLE, SENTINEL); a transport failure throws.
RedisReply setup_command(redisContext* c, const std::vector<std::string>& args, const std::string& where) {
    RedisReply r = send(c, args);
    if (!r) throw RetryableError(where + ": " + (c->err ? c->errstr : "no reply") + " (" + args.front() + ")");
    return r;
}

}  // namespace

void RedisReplyFree::operator()(redisReply* r) const noexcept { freeReplyObject(r); }
void RedisConnection::ContextFree::operator()(redisContext* c) const noexcept { redisFree(c); }

RedisEndpoint redis_endpoint(const QuotaStoreSpec& spec, const RedisCredentials& credentials,
                             const RedisCredentials& sentinel_credentials, std::chrono::milliseconds timeout) {
    RedisEndpoint e;
    if (spec.kind == QuotaStoreSpec::Kind::redis_sentinel) {
        e.nodes = spec.sentinels;
        e.master_name = spec.master_name;
        e.sentinel_credentials = sentinel_credentials;
    } else {
        e.nodes = {RedisNode{spec.host, spec.port}};
    }
    e.db = spec.db;
    e.credentials = credentials;
    e.timeout = timeout;
    e.name = spec.to_string();
    return e;
}

RedisConnection::RedisConnection(RedisEndpoint endpoint) : endpoint_(std::move(endpoint)) {
    if (endpoint_.nodes.empty()) throw std::invalid_argument("RedisConnection: no node to connect to");
}

RedisConnection::~RedisConnection() = default;

RedisReply RedisConnection::command(const std::vector<std::string>& args) { return run(args, 0); }

RedisReply RedisConnection::replicated_command(const std::vector<std::string>& args, int replicas) {
    return run(args, std::max(replicas, 0));
}

RedisReply RedisConnection::same_connection_command(const std::vector<std::string>& args, int replicas) {
    if (!ctx_) throw RedisError(endpoint_.name + ": the connection was lost (" + last_error_ + ")");
    try {
        return attempt(args, std::max(replicas, 0), Clock::now() + endpoint_.timeout);
    } catch (const RetryableError& e) {
        throw RedisError(e.what());  // attempt() dropped the connection; no other one is tried
    }
}

RedisReply RedisConnection::run(const std::vector<std::string>& args, int replicas) {
    const Clock::time_point start = Clock::now();
    if (!ctx_ && start < next_attempt_) throw RedisError(endpoint_.name + " unreachable (" + last_error_ + ")");
    const Clock::time_point deadline = start + endpoint_.timeout;
    while (true) {
        try {
            return attempt(args, replicas, deadline);
        } catch (const RetryableError& e) {
            last_error_ = e.what();
            // No new attempt without the time for one: the error to report is this one.
            if (!sentinel_mode() || left(deadline) <= kRetryPause) {
                // Whoever comes next within a second fails at once instead of waiting again.
                if (!ctx_) next_attempt_ = Clock::now() + 1s;
                throw RedisError(e.what());
            }
        } catch (const RedisError& e) {  // final: an error reply, AUTH refused
            if (!ctx_) {
                last_error_ = e.what();
                next_attempt_ = Clock::now() + 1s;
            }
            throw;
        }
        // A failover takes the sentinels a moment: do not spin on them.
        std::this_thread::sleep_for(kRetryPause);
    }
}

RedisReply RedisConnection::attempt(const std::vector<std::string>& args, int replicas, Clock::time_point deadline) {
    if (!ctx_) connect(deadline);
    redisContext* c = ctx_.get();
    RedisReply reply, acks;
    if (replicas == 0) reply = send(c, args);
    else std::tie(reply, acks) = send_and_wait(c, args, replicas, wait_budget(deadline).count());
    if (!reply) {
        std::string why = endpoint_.name + ": " + transport_error(c, endpoint_.timeout);
        drop(why);
        throw RetryableError(why);
    }
    if (reply->type == REDIS_REPLY_ERROR) {
        std::string text = reply_text(reply.get());
        if (not_master_error(text)) {
            drop(endpoint_.name + ": " + text);
            throw RetryableError(endpoint_.name + ": the node is no longer the master: " + text);
        }
        throw RedisError("Redis: " + text);
    }
    if (acks && (acks->type != REDIS_REPLY_INTEGER || acks->integer < replicas))
        throw RedisError(endpoint_.name + ": the write reached " +
                         std::to_string(acks->type == REDIS_REPLY_INTEGER ? acks->integer : 0) + " of " +
                         std::to_string(replicas) + " replicas within the timeout");
    return reply;
}

void RedisConnection::drop(const std::string& why) {
    last_error_ = why;
    ctx_.reset();  // the stream is out of step now: start afresh next time
    if (!sentinel_mode()) next_attempt_ = Clock::now() + 1s;
}

void RedisConnection::connect(Clock::time_point deadline) {
    Context c = sentinel_mode() ? open_master(deadline)
                                : open_node(endpoint_.nodes.front(), endpoint_.credentials, deadline, "Redis");
    if (endpoint_.db != 0) {
        RedisReply r = setup_command(c.get(), {"SELECT", std::to_string(endpoint_.db)}, endpoint_.name);
        if (r->type == REDIS_REPLY_ERROR) throw RedisError(endpoint_.name + ": SELECT: " + reply_text(r.get()));
    }
    if (redisSetTimeout(c.get(), to_timeval(endpoint_.timeout)) != REDIS_OK)
        throw RetryableError(endpoint_.name + ": " + c->errstr);
    ctx_ = std::move(c);
    ++connection_id_;
    next_attempt_ = {};
}

RedisConnection::Context RedisConnection::open_node(const RedisNode& node, const RedisCredentials& auth,
                                                    Clock::time_point deadline, std::string_view what) {
    const std::string where = std::string(what) + " " + node_text(node);
    if (left(deadline).count() <= 0) throw RetryableError(where + ": no time left to connect");
    Context c(redisConnectWithTimeout(node.host.c_str(), node.port, to_timeval(left(deadline))));
    if (!c || c->err) throw RetryableError(where + ": " + (c ? c->errstr : "out of memory"));
    if (redisSetTimeout(c.get(), to_timeval(left(deadline))) != REDIS_OK)
        throw RetryableError(where + ": " + c->errstr);
    if (!auth.password.empty()) {
        std::vector<std::string> args{"AUTH"};
        if (!auth.user.empty()) args.push_back(auth.user);
        args.push_back(auth.password);
        RedisReply r = setup_command(c.get(), args, where);
        // Not retried: a wrong password stays wrong. The text reaches the log and the 451 reply
        // (the reason of quota_store_failure): it names the user, never the password or the file.
        if (r->type == REDIS_REPLY_ERROR)
            throw RedisError(where + ": AUTH " + (auth.user.empty() ? "with the password" : "as user " + auth.user) +
                             " refused: " + reply_text(r.get()));
    }
    return c;
}

RedisNode RedisConnection::ask_sentinel(const RedisNode& sentinel, Clock::time_point deadline) {
    Context c = open_node(sentinel, endpoint_.sentinel_credentials, deadline, "sentinel");
    const std::string where = "sentinel " + node_text(sentinel);
    RedisReply r = setup_command(c.get(), {"SENTINEL", "get-master-addr-by-name", endpoint_.master_name}, where);
    if (r->type == REDIS_REPLY_ERROR) throw RetryableError(where + ": " + reply_text(r.get()));
    if (r->type == REDIS_REPLY_NIL) throw RetryableError(where + " knows no master " + endpoint_.master_name);
    if (r->type != REDIS_REPLY_ARRAY || r->elements != 2 || r->element[0]->type != REDIS_REPLY_STRING ||
        r->element[1]->type != REDIS_REPLY_STRING)
        throw RetryableError(where + ": unexpected reply to SENTINEL get-master-addr-by-name");
    std::string port_text = reply_text(r->element[1]);
    int port = 0;
    for (char ch : port_text) port = (ch >= '0' && ch <= '9' && port < 65536) ? port * 10 + (ch - '0') : 65536;
    if (port_text.empty() || port < 1 || port > 65535) throw RetryableError(where + ": bad master port " + port_text);
    return RedisNode{reply_text(r->element[0]), static_cast<std::uint16_t>(port)};
}

// Asks each sentinel in turn; the first whose master answers ROLE with "master" wins.
RedisConnection::Context RedisConnection::open_master(Clock::time_point deadline) {
    std::string errors;
    for (const RedisNode& sentinel : endpoint_.nodes) {
        try {
            RedisNode master = ask_sentinel(sentinel, deadline);
            Context c = open_node(master, endpoint_.credentials, deadline, "master " + endpoint_.master_name);
            const std::string where = "master " + endpoint_.master_name + " at " + node_text(master);
            RedisReply role = setup_command(c.get(), {"ROLE"}, where);
            if (role->type != REDIS_REPLY_ARRAY || role->elements == 0 || role->element[0]->type != REDIS_REPLY_STRING)
                throw RetryableError(where + ": unexpected reply to ROLE");
            std::string is = reply_text(role->element[0]);
            if (is != "master") throw RetryableError(where + " is a " + is + " (a failover under way)");
            return c;
        } catch (const RetryableError& e) {
            errors += errors.empty() ? "" : "; ";
            errors += e.what();
        }
        if (left(deadline).count() <= 0) break;
    }
    throw RetryableError(endpoint_.name + ": " + errors);
}

}  // namespace preflight
