// Joins bounce reports (DSNs) that came back after a delivery back to the row of that delivery:
// "Delivered can still become a bounce". A Sent row that a failed DSN refers to becomes a
// Bounce (or Expired, when the downstream gave up after its own queue lifetime) with the DSN's
// reason as the status message, and is classified again on that reason.
//
// The records are plain data, whatever parsed them. A record refers to a row by, in order:
//   1. queue id + recipient: our queue id, or the downstream's ("250 2.0.0 Ok: queued as X" in
//      the Sent row's reply, which is the id a downstream Postfix puts in its DSN);
//   2. Message-ID of the returned message + recipient;
//   3. recipient + time: the first DSN for that recipient dated no earlier than the row (a
//      minute of clock skew allowed) and at most `window` seconds after it.
// An empty recipient in a record matches any recipient for 1 and 2. Recipients compare without
// regard to case. Each record turns at most one row.
//
// Times: LogTime::instant() on both sides. Logs with syslog timestamps have no zone, so their
// instant() is the local wall clock: give DSN dates as a local wall-clock LogTime (offset 0).
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "delivery_tracker.hpp"

namespace preflight {

struct DsnRecord {
    std::string queue_id;            // a queue id named in the DSN (ours or the downstream's); may be empty
    std::string message_id;          // Message-ID of the returned message, without <>; may be empty
    std::string recipient;           // Final-Recipient (or Original-Recipient) address; may be empty
    LogTime time;                    // when the DSN was issued (its Date, or Arrival-Date)
    Status status = Status::bounce;  // bounce (Action: failed) or expired; others are ignored
    std::string reason;              // Diagnostic-Code, else the status text
};

class DsnJoin {
public:
    explicit DsnJoin(std::vector<DsnRecord> records, std::int64_t window = 7 * 86400);

    // If row is Sent and a record refers to it, rewrites the row; true when it did.
    bool apply(DeliveryRow& row, const ReplyClassifier& classifier, std::string& scratch);

    std::size_t size() const { return records_.size(); }
    std::size_t used() const { return used_count_; }

private:
    std::size_t lookup(std::string_view kind, std::string_view id, std::string_view rcpt);
    std::size_t take(std::size_t index);

    std::vector<DsnRecord> records_;
    std::vector<bool> used_;
    std::size_t used_count_ = 0;
    std::int64_t window_;
    // "q" or "m", '\0', id, '\0', lower-case recipient -> record indexes
    std::unordered_map<std::string, std::vector<std::size_t>> by_key_;
    // lower-case recipient -> record indexes in time order
    std::unordered_map<std::string, std::vector<std::size_t>> by_recipient_;
    std::string key_;
};

// The downstream's queue id in a "250 2.0.0 Ok: queued as 4Xyz" reply; empty when none.
std::string_view queued_as(std::string_view reply);

}  // namespace preflight
