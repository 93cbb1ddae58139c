// One bounce message, MIME-decoded by GMime, reduced to a plain struct: what kind of report it
// is, the per-message DSN fields, the per-recipient fields, and the decoded human-readable text
// for the bounces that carry their reasons only as text. Nothing here classifies.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "free_text_bounce.hpp"

namespace preflight {

enum class ReportKind { dsn, non_standard, auto_reply, feedback_report };
std::string_view to_string(ReportKind k);

struct BounceRecipient {
    std::string recipient;
    std::string action;      // DSN Action, lower-cased; empty for free-text bounces
    std::string status;      // DSN Status ("5.1.1"); empty when unknown
    std::string diagnostic;  // Diagnostic-Code value, or the reason words of a free-text bounce
    std::string remote_mta;
};

struct BounceReport {
    ReportKind kind = ReportKind::non_standard;
    std::string reporting_mta, message_id, queue_id, subject;
    // The bounce's Date header: seconds since the epoch and the zone it was written in.
    bool has_date = false;
    std::int64_t date = 0;
    std::int32_t date_offset = 0;  // seconds east of UTC
    std::vector<BounceRecipient> recipients;
    bool delay_notice = false;  // the text says the MTA is still trying (a warning, not a failure)
    // A mailing list manager's notice about a post (held for its moderator, refused to a
    // non-member), not an MTA's bounce: the list exists, whatever the words.
    bool list_notice = false;
    std::string intro;       // general wording of the human-readable part, for recipients without a reason
    bool truncated = false;  // the input ends inside the report itself: records may be missing
    std::string error;       // non-empty: the message could not be read; nothing else is set
};

struct BounceLimits {
    std::size_t max_parts = 1000;  // MIME parts in one message, nested ones included
};

// Parses one RFC 5322 message. Never throws on bad input: a message that is no message
// (binary data, no header) or breaks a limit comes back with error set.
BounceReport parse_bounce_message(std::string_view data, const BounceLimits& limits = {});

}  // namespace preflight
