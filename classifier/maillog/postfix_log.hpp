// One Postfix log line in, one parsed event out: no allocation, every field a string_view into
// the line. Timestamp formats, recognised per line (files may mix them):
//   syslog (RFC 3164)   "Jan  5 10:00:01 host postfix/smtp[123]: ..."  (optional ".uuuuuu");
//                       also journalctl's default -o short ("Jan 05 10:00:01")
//   RFC 3339            "2024-01-05T10:00:01.123456+01:00 host postfix/smtp[123]: ..." (rsyslog's
//                       high-precision format), the zone also as +0100 or Z: journalctl -o
//                       short-iso "2024-01-05T10:00:01+0100" and -o short-iso-precise
//   maillog_file style  "2024-01-05 10:00:01.123456 host postfix/smtp[123]: ..."
// journalctl's own lines ("-- Boot 3f2a... --", "-- No entries --", "-- Logs begin at ... --")
// are ignored, so `journalctl -u postfix@- -o short-iso` output reads like a mail log.
// A syslog date has no year: it is the reference time's year, or the year before when that
// would put the line more than a day after the reference (a log read in January that starts in
// December). The reference is the file's modification time, or now for stdin and --follow.
//
// Lines of other programs (anything whose tag has no '/', as in "postfix/smtp" or
// "postfix-out/qmgr") and Postfix lines that say nothing about a delivery are `ignored`.
#pragma once

#include <cstdint>
#include <string_view>

namespace preflight {

// A wall-clock reading as the log wrote it. civil counts seconds from 1970-01-01 00:00:00 of
// that reading (no zone applied); offset is the zone the line gave (RFC 3339), else 0.
struct LogTime {
    std::int64_t civil = 0;
    std::int32_t usec = 0;
    std::int32_t offset = 0;  // seconds east of UTC
    // Comparable across lines (UTC when the line had a zone, the local reading otherwise).
    std::int64_t instant() const { return civil - offset; }
    // "YYYY-MM-DD HH:MM:SS"; buf needs 20 bytes. Returns 19.
    std::size_t format(char* buf) const;
    // Days since 1899-12-30 plus the fraction of the day: an Excel date serial.
    double excel_serial() const;
};

// Seconds from 1970-01-01 to y-m-d 00:00:00 (proleptic Gregorian).
std::int64_t days_from_civil(int y, unsigned m, unsigned d);

// What a syslog date's missing year is taken from (see above).
struct YearReference {
    int year = 1970;
    std::int64_t civil = 0;  // the reference reading itself
    // From a time_t in the machine's local zone (a file's mtime or now).
    static YearReference from_time(std::int64_t unix_seconds);
};

enum class EventKind {
    queued,      // qmgr "QID: from=<s>, size=..., nrcpt=N (queue active)"
    message_id,  // cleanup "QID: message-id=<id>"
    delivery,    // "QID: to=<r>, ..., status=WORD (text)" from smtp, lmtp, local, error, ...
    expired,     // qmgr "QID: from=<s>, status=expired, returned to sender"
    removed,     // qmgr "QID: removed"
    reject,      // "NOQUEUE: reject: ...", "QID: reject: ...", "QID: milter-reject: ..."
};

enum class DeliveryWord { sent, deferred, bounced, expired };

struct LogEvent {
    EventKind kind = EventKind::queued;
    LogTime time;
    std::string_view queue_id;           // empty for NOQUEUE
    std::string_view sender;             // from=<...> (queued, expired, reject)
    std::string_view recipient;          // to=<...> (delivery, reject)
    std::string_view message_id;         // message-id=<...> without the brackets
    std::string_view relay, delay, dsn;  // delivery fields, empty when absent
    DeliveryWord word = DeliveryWord::sent;
    // delivery: the text in parentheses after status=; reject: the reply sent to the client.
    std::string_view text;
    bool milter = false;  // reject came from a milter (milter-reject)
};

enum class LineResult {
    event,      // out holds an event
    ignored,    // a log line with nothing for us
    not_a_log,  // no timestamp, host and tag: not a syslog, maillog_file or journalctl line;
                // why names the bad part of a timestamp that looks like an RFC 3339 one
    malformed,  // a Postfix line of a kind we read, but broken; why says how
};

// Parses one line (without its newline). why is set for not_a_log and malformed.
LineResult parse_log_line(std::string_view line, const YearReference& ref, LogEvent& out, std::string_view& why);

// The reply inside a delivery text: "host mx[1.2.3.4] said: 550 ..." -> "550 ...".
std::string_view remote_reply(std::string_view text);

}  // namespace preflight
