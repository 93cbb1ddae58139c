// Joins Postfix log events by queue id into one row per recipient with its final state.
//
// State machine per recipient: a delivery "sent" or "bounced" is final at once (a recipient
// deferred before and sent later ends Sent); "deferred" is kept until a later attempt, the
// message's "status=expired, returned to sender" (the still-deferred recipients end Expired),
// its "removed" (postsuper -d: they end Deferred), eviction, or the end of the input (Deferred).
// Rejects (NOQUEUE, smtpd/cleanup with a queue id, milter-reject) are Rejected at once.
//
// Memory: state exists only for open queue ids (sender, Message-ID, deferred recipients); a
// queue id is dropped when it is removed, and evicted when the log has not mentioned it for
// longer than the queue lifetime (Postfix's maximal_queue_lifetime, 5 days by default) or when
// more than max_open are open (the least recently seen go first).
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "category.hpp"
#include "postfix_log.hpp"
#include "reply_classifier.hpp"

namespace preflight {

struct DeliveryRow {
    LogTime time;  // of the event that made the state final
    std::string sender, recipient;
    Status status = Status::sent;
    std::string message;  // the remote reply, or the reject text
    std::string queue_id, message_id, relay, delay;
    Category category = Category::other;
    Bounce bounce = Bounce::none;
    std::string enhanced;  // "5.1.1": the log's dsn=, else the reply's, else empty
};

struct TrackerOptions {
    std::int64_t queue_lifetime = 5 * 86400;  // seconds of log time
    std::size_t max_open = 1'000'000;         // open queue ids kept at most
};

class DeliveryTracker {
public:
    // sink receives each final row (and may change it, e.g. the DSN join); the row is reused
    // after the call returns.
    using Sink = std::function<void(DeliveryRow&)>;
    DeliveryTracker(const ReplyClassifier& classifier, TrackerOptions options, Sink sink);

    void add(const LogEvent& ev);
    // End of input: every recipient still deferred becomes a Deferred row; state is cleared.
    void finish();

    std::size_t open() const { return open_.size(); }
    std::size_t evicted() const { return evicted_; }

private:
    struct Deferred {
        std::string recipient, reply, relay, delay, dsn;
        LogTime time;
    };
    struct Message {
        std::string sender, message_id;
        std::vector<Deferred> deferred;
        std::int64_t last_seen = 0;  // LogTime::instant()
        bool queued = false;         // qmgr has seen it
    };
    struct Hash {
        using is_transparent = void;
        std::size_t operator()(std::string_view s) const { return std::hash<std::string_view>{}(s); }
    };
    using Map = std::unordered_map<std::string, Message, Hash, std::equal_to<>>;

    Message& message(std::string_view queue_id, std::int64_t now);
    Message* find(std::string_view queue_id);
    void emit(Status status, std::string_view queue_id, const Message* msg, std::string_view recipient,
              std::string_view text, const LogTime& time, std::string_view relay, std::string_view delay,
              std::string_view dsn, Origin origin);
    void emit_deferred(std::string_view queue_id, const Message& msg, Status status);
    void maybe_evict(std::int64_t now);
    void evict(Map::iterator it);

    const ReplyClassifier& classifier_;
    TrackerOptions options_;
    Sink sink_;
    Map open_;
    DeliveryRow row_;
    std::string scratch_;
    std::int64_t last_sweep_ = 0;
    bool swept_ = false;
    std::size_t evicted_ = 0;
};

}  // namespace preflight
