// preflight-classify log: line parser, tracker state machine, DSN join, writers, line splitter.
#include <catch2/catch.hpp>

#include <deque>

#include <cstring>
#include <string>
#include <vector>

#include "delivery_tracker.hpp"
#include "delivery_writers.hpp"
#include "dsn_join.hpp"
#include "log_reader.hpp"
#include "postfix_log.hpp"

using namespace preflight;

namespace {

YearReference ref_2024() {  // 2024-06-30 12:00:00
    YearReference r;
    r.year = 2024;
    r.civil = days_from_civil(2024, 6, 30) * 86400 + 12 * 3600;
    return r;
}

std::string date_of(const LogTime& t) {
    char buf[20];
    return std::string(buf, t.format(buf));
}

LogEvent parse_ok(std::string_view line, const YearReference& ref = ref_2024()) {
    LogEvent ev;
    std::string_view why;
    LineResult r = parse_log_line(line, ref, ev, why);
    INFO(line << " -> " << why);
    REQUIRE(r == LineResult::event);
    return ev;
}

std::shared_ptr<const RuleSet> rules() {
    static auto r = RuleSetBuilder().add_shipped().build();
    return r;
}

// Feeds lines to a tracker and collects the rows.
struct Run {
    ReplyClassifier classifier{rules()};
    std::vector<DeliveryRow> rows;
    DeliveryTracker tracker;
    explicit Run(TrackerOptions o = {}) : tracker(classifier, o, [this](DeliveryRow& r) { rows.push_back(r); }) {}
    Run& feed(std::initializer_list<std::string_view> lines) {
        for (auto l : lines) {
            LogEvent ev;
            std::string_view why;
            LineResult r = parse_log_line(l, ref_2024(), ev, why);
            INFO(l << " -> " << why);
            REQUIRE(r != LineResult::not_a_log);
            REQUIRE(r != LineResult::malformed);
            if (r == LineResult::event) tracker.add(ev);
        }
        return *this;
    }
};

constexpr std::string_view kQueued =
    "Jun  3 10:00:01 mx postfix/qmgr[125]: 4AB12345: from=<alice@example.com>, size=1234, nrcpt=2 (queue active)";

}  // namespace

TEST_CASE("log timestamps: syslog, RFC 3339, maillog_file; year inference", "[log]") {
    LogEvent ev = parse_ok(kQueued);
    CHECK(date_of(ev.time) == "2024-06-03 10:00:01");
    // A December line read with a reference in June of the next year... is last December.
    ev = parse_ok("Dec 31 23:59:59 mx postfix/qmgr[1]: ABCDEF1: removed");
    CHECK(date_of(ev.time) == "2023-12-31 23:59:59");
    // Up to a day ahead of the reference still counts as this year (clock skew).
    ev = parse_ok("Jul  1 06:00:00 mx postfix/qmgr[1]: ABCDEF1: removed");
    CHECK(date_of(ev.time) == "2024-07-01 06:00:00");
    ev = parse_ok("Jun 03 10:00:01.123456 mx postfix/qmgr[1]: ABCDEF1: removed");
    CHECK(ev.time.usec == 123456);
    ev = parse_ok("2023-02-28T23:30:00.5+02:00 mx postfix/qmgr[1]: ABCDEF1: removed");
    CHECK(date_of(ev.time) == "2023-02-28 23:30:00");
    CHECK(ev.time.offset == 7200);
    CHECK(ev.time.instant() == days_from_civil(2023, 2, 28) * 86400 + 21 * 3600 + 1800);
    ev = parse_ok("2023-02-28 23:30:00.123456 mx postfix/qmgr[1]: ABCDEF1: removed");
    CHECK(date_of(ev.time) == "2023-02-28 23:30:00");
    ev = parse_ok("2023-02-28T23:30:00Z mx postfix/qmgr[1]: ABCDEF1: removed");
    CHECK(ev.time.offset == 0);
    // Excel: 2023-02-28 is serial 44985.
    CHECK(parse_ok("2023-02-28T12:00:00Z mx postfix/qmgr[1]: ABCDEF1: removed").time.excel_serial() == Approx(44985.5));
}

TEST_CASE("log timestamps: journalctl short-iso, short-iso-precise, short; RFC 3339 high precision", "[log][journal]") {
    constexpr std::string_view kLine =
        " host postfix/smtp[1234]: 3F2A1C0042: to=<a@example.com>, relay=mx[192.0.2.1]:25, "
        "delay=1, delays=0/0/0/1, dsn=2.0.0, status=sent (250 2.0.0 Ok)";
    // A LogEvent's fields view its line: each line is kept alive to the end of the case.
    std::deque<std::string> lines;
    auto at = [&](std::string_view stamp) {
        return parse_ok(lines.emplace_back(std::string(stamp) + std::string(kLine)));
    };
    // journalctl -o short-iso (systemd up to 253 writes the zone as +HHMM)
    LogEvent ev = at("2026-12-06T10:15:01+0000");
    CHECK(date_of(ev.time) == "2026-12-06 10:15:01");
    CHECK(ev.time.offset == 0);
    CHECK(ev.time.usec == 0);
    CHECK(ev.kind == EventKind::delivery);
    CHECK(ev.recipient == "a@example.com");
    CHECK(ev.queue_id == "3F2A1C0042");
    ev = at("2026-12-06T11:15:01+0100");
    CHECK(date_of(ev.time) == "2026-12-06 11:15:01");
    CHECK(ev.time.offset == 3600);
    CHECK(ev.time.instant() == days_from_civil(2026, 12, 6) * 86400 + 10 * 3600 + 15 * 60 + 1);
    ev = at("2026-12-06T05:45:01-0430");
    CHECK(ev.time.offset == -(4 * 3600 + 30 * 60));
    // journalctl -o short-iso-precise
    ev = at("2026-12-06T10:15:01.123456+0000");
    CHECK(ev.time.usec == 123456);
    CHECK(date_of(ev.time) == "2026-12-06 10:15:01");
    // rsyslog's RFC 3339 high-precision format, and newer journalctl's +HH:MM
    ev = at("2026-12-06T10:15:01.123456+00:00");
    CHECK(ev.time.usec == 123456);
    CHECK(ev.time.offset == 0);
    ev = at("2026-12-06T10:15:01.5-03:00");
    CHECK(ev.time.usec == 500000);
    CHECK(ev.time.offset == -3 * 3600);
    // journalctl -o short (the default): syslog's form with a zero-padded day
    ev = at("Jun 03 10:15:01");
    CHECK(date_of(ev.time) == "2024-06-03 10:15:01");
    // A leap day exists in a leap year only.
    CHECK(date_of(at("2024-02-29T00:00:00Z").time) == "2024-02-29 00:00:00");
}

TEST_CASE("log timestamps: bad RFC 3339 timestamps are not log lines, and why says which part", "[log][journal]") {
    constexpr std::string_view kRest = " host postfix/qmgr[1]: ABCDEF1: removed";
    auto why_of = [&](std::string_view stamp) {
        LogEvent ev;
        std::string_view why;
        std::string line = std::string(stamp) + std::string(kRest);
        LineResult r = parse_log_line(line, ref_2024(), ev, why);
        INFO(line);
        CHECK(r == LineResult::not_a_log);
        return std::string(why);
    };
    CHECK(why_of("2026-13-06T10:15:01+0000") == "timestamp: no such date");
    CHECK(why_of("2026-02-30T10:15:01+0000") == "timestamp: no such date");
    CHECK(why_of("2023-02-29T10:15:01+0000") == "timestamp: no such date");
    CHECK(why_of("2026-12-6T10:15:01+00000") == "timestamp: date not YYYY-MM-DD");
    CHECK(why_of("2026-12-06X10:15:01+0000") == "timestamp: no 'T' or blank between date and time");
    CHECK(why_of("2026-12-06T24:15:01+0000") == "timestamp: time not HH:MM:SS[.fraction] or out of range");
    CHECK(why_of("2026-12-06T10:15:01.+0000") == "timestamp: time not HH:MM:SS[.fraction] or out of range");
    CHECK(why_of("2026-12-06T10:15:01+25:00") == "timestamp: zone offset not +HH:MM or +HHMM");
    CHECK(why_of("2026-12-06T10:15:01+00") == "timestamp: zone offset not +HH:MM or +HHMM");
    CHECK(why_of("2026-12-06T10:15:01+0000x") == "timestamp: not followed by a blank");
    CHECK(why_of("Foo 06 10:15:01") == "no timestamp at its start");
}

TEST_CASE("journalctl's own lines are skipped, not bad lines", "[log][journal]") {
    LogEvent ev;
    std::string_view why;
    auto ref = ref_2024();
    for (std::string_view l :
         {"-- No entries --", "-- Reboot --", "-- Boot 3f2a1c00421b4c5d8e9f0a1b2c3d4e5f --",
          "-- Logs begin at Sun 2026-12-06 10:00:00 UTC, end at Sun 2026-12-06 11:00:00 UTC. --",
          "-- Journal begins at Sun 2026-12-06 10:00:00 UTC, ends at Sun 2026-12-06 11:00:00 UTC. --"}) {
        INFO(l);
        CHECK(parse_log_line(l, ref, ev, why) == LineResult::ignored);
    }
    // Anything else starting with "--" is still not a log line.
    CHECK(parse_log_line("-- not a marker", ref, ev, why) == LineResult::not_a_log);
    CHECK(parse_log_line("--", ref, ev, why) == LineResult::not_a_log);
}

TEST_CASE("log lines that are not ours or not log lines", "[log]") {
    LogEvent ev;
    std::string_view why;
    auto ref = ref_2024();
    CHECK(parse_log_line("hello world", ref, ev, why) == LineResult::not_a_log);
    CHECK(parse_log_line("Foo  3 10:00:01 mx postfix/qmgr[1]: X", ref, ev, why) == LineResult::not_a_log);
    CHECK(parse_log_line("2024-13-01T00:00:00Z mx postfix/qmgr[1]: ABCDEF1: removed", ref, ev, why) ==
          LineResult::not_a_log);
    CHECK(parse_log_line("Jun  3 25:00:01 mx postfix/qmgr[1]: ABCDEF1: removed", ref, ev, why) ==
          LineResult::not_a_log);
    // Other programs, other Postfix lines: ignored.
    CHECK(parse_log_line("Jun  3 10:00:01 mx kernel: ABCDEF1: removed", ref, ev, why) == LineResult::ignored);
    CHECK(parse_log_line("Jun  3 10:00:01 mx dovecot[12]: ABCDEF1: to=<a@b>", ref, ev, why) == LineResult::ignored);
    CHECK(parse_log_line("Jun  3 10:00:01 mx postfix/smtpd[1]: connect from x[1.2.3.4]", ref, ev, why) ==
          LineResult::ignored);
    CHECK(parse_log_line("Jun  3 10:00:01 mx postfix/smtpd[1]: ABCDEF1: client=x[1.2.3.4]", ref, ev, why) ==
          LineResult::ignored);
    CHECK(parse_log_line("Jun  3 10:00:01 mx postfix/smtpd[1]: warning: hostname x does not resolve", ref, ev, why) ==
          LineResult::ignored);
    CHECK(parse_log_line("Jun  3 10:00:01 mx postfix/smtpd[1]: NOQUEUE: reject_warning: RCPT from x[1.2.3.4]: 450 "
                         "nope; from=<a> to=<b> proto=ESMTP helo=<h>",
                         ref, ev, why) == LineResult::ignored);
    CHECK(parse_log_line("Jun  3 10:00:01 mx postfix/smtp[1]: ABCDEF1: to=<a@b>, relay=none, delay=1, "
                         "status=deliverable (probe)",
                         ref, ev, why) == LineResult::ignored);
    // Broken Postfix lines are malformed, with a reason.
    CHECK(parse_log_line("Jun  3 10:00:01 mx postfix/smtp[1]: ABCDEF1: to=<a@b, relay=none", ref, ev, why) ==
          LineResult::malformed);
    CHECK(parse_log_line("Jun  3 10:00:01 mx postfix/smtp[1]: ABCDEF1: to=<a@b>, relay=none, delay=1", ref, ev, why) ==
          LineResult::malformed);
    CHECK(why == "delivery line without status=");
}

TEST_CASE("log delivery, queue and reject lines", "[log]") {
    LogEvent ev = parse_ok(
        "Jun  3 10:00:02 mx postfix/smtp[126]: 4AB12345: to=<bob@example.org>, orig_to=<bob@alias.example>, "
        "relay=mx.example.org[192.0.2.1]:25, delay=1.2, delays=0.1/0/0.5/0.6, dsn=4.2.2, status=deferred "
        "(host mx.example.org[192.0.2.1] said: 452 4.2.2 Mailbox full (in reply to RCPT TO command))");
    CHECK(ev.kind == EventKind::delivery);
    CHECK(ev.queue_id == "4AB12345");
    CHECK(ev.recipient == "bob@example.org");
    CHECK(ev.relay == "mx.example.org[192.0.2.1]:25");
    CHECK(ev.delay == "1.2");
    CHECK(ev.dsn == "4.2.2");
    CHECK(ev.word == DeliveryWord::deferred);
    CHECK(remote_reply(ev.text) == "452 4.2.2 Mailbox full (in reply to RCPT TO command)");

    ev = parse_ok(kQueued);
    CHECK(ev.kind == EventKind::queued);
    CHECK(ev.sender == "alice@example.com");
    ev = parse_ok("Jun  3 10:00:01 mx postfix/qmgr[125]: 4AB12345: from=<>, status=expired, returned to sender");
    CHECK(ev.kind == EventKind::expired);
    CHECK(ev.sender.empty());
    ev = parse_ok("Jun  3 10:00:01 mx postfix/cleanup[1]: 4AB12345: message-id=<a.b@c>");
    CHECK(ev.kind == EventKind::message_id);
    CHECK(ev.message_id == "a.b@c");

    ev = parse_ok(
        "Jun  3 10:05:00 mx postfix/smtpd[123]: NOQUEUE: reject: RCPT from unknown[192.0.2.9]: 554 5.7.1 "
        "<x@y.example>: Relay access denied; from=<spam@bad.example> to=<x@y.example> proto=ESMTP helo=<bad>");
    CHECK(ev.kind == EventKind::reject);
    CHECK(ev.queue_id.empty());
    CHECK(ev.text == "554 5.7.1 <x@y.example>: Relay access denied");
    CHECK(ev.sender == "spam@bad.example");
    CHECK(ev.recipient == "x@y.example");
    // postscreen: the client has a port after the brackets.
    ev = parse_ok(
        "Jun  3 10:05:00 mx postfix/postscreen[9]: NOQUEUE: reject: RCPT from [192.0.2.9]:41234: 550 5.7.1 "
        "Service unavailable; client [192.0.2.9] blocked using zen.example; from=<a@b> to=<c@d> "
        "proto=ESMTP helo=<x>");
    CHECK(ev.text == "550 5.7.1 Service unavailable; client [192.0.2.9] blocked using zen.example");
    CHECK(ev.recipient == "c@d");
    // milter, with a queue id, at end of message.
    ev = parse_ok(
        "Jun  3 10:06:00 mx postfix/cleanup[124]: 5BC1234: milter-reject: END-OF-MESSAGE from "
        "localhost[127.0.0.1]: 5.7.1 Refused by preflight: SPF fail; from=<a@b.example> to=<c@d.example> "
        "proto=ESMTP helo=<h>");
    CHECK(ev.milter);
    CHECK(ev.queue_id == "5BC1234");
    CHECK(ev.text == "5.7.1 Refused by preflight: SPF fail");
    // milter at connect: no envelope at all.
    ev = parse_ok(
        "Jun  3 10:06:00 mx postfix/smtpd[1]: NOQUEUE: milter-reject: CONNECT from x[192.0.2.1]: 554 5.7.1 "
        "go away; proto=SMTP");
    CHECK(ev.text == "554 5.7.1 go away");
    CHECK(ev.recipient.empty());
    // header_checks in cleanup: the reply comes last, the header text may hold ': ' and ' from '.
    ev = parse_ok(
        "Jun  3 10:07:00 mx postfix/cleanup[124]: 6CD1234: reject: header Subject: mail from bob: hi from "
        "localhost[127.0.0.1]; from=<a@b> to=<c@d> proto=ESMTP helo=<h>: 5.7.1 Spammy subject");
    CHECK(ev.text == "5.7.1 Spammy subject");
    CHECK(ev.sender == "a@b");
    CHECK(ev.recipient == "c@d");
}

TEST_CASE("tracker: deferred then sent ends Sent; bounced and sent at once; multi-recipient", "[log]") {
    Run run;
    run.feed({
        "Jun  3 10:00:00 mx postfix/cleanup[124]: 4AB12345: message-id=<m1@example.com>",
        kQueued,
        "Jun  3 10:00:02 mx postfix/smtp[126]: 4AB12345: to=<bob@example.org>, relay=mx[192.0.2.1]:25, delay=1, "
        "delays=0/0/0/1, dsn=4.2.2, status=deferred (host mx[192.0.2.1] said: 452 4.2.2 Mailbox full (in reply to "
        "RCPT TO command))",
        "Jun  3 10:00:02 mx postfix/smtp[126]: 4AB12345: to=<dave@example.org>, relay=mx[192.0.2.1]:25, delay=1, "
        "delays=0/0/0/1, dsn=5.1.1, status=bounced (host mx[192.0.2.1] said: 550 5.1.1 User unknown (in reply to "
        "RCPT TO command))",
    });
    REQUIRE(run.rows.size() == 1);
    CHECK(run.rows[0].status == Status::bounce);
    CHECK(run.rows[0].recipient == "dave@example.org");
    CHECK(run.rows[0].sender == "alice@example.com");
    CHECK(run.rows[0].category == Category::bad_mailbox);
    CHECK(run.rows[0].bounce == Bounce::hard);
    CHECK(run.rows[0].enhanced == "5.1.1");
    CHECK(run.rows[0].message == "550 5.1.1 User unknown (in reply to RCPT TO command)");
    CHECK(run.tracker.open() == 1);
    run.feed({
        "Jun  3 11:00:02 mx postfix/smtp[126]: 4AB12345: to=<bob@example.org>, relay=mx[192.0.2.1]:25, delay=3601, "
        "delays=0/0/0/1, dsn=2.0.0, status=sent (250 2.0.0 Ok: queued as 9XYZ)",
        "Jun  3 11:00:02 mx postfix/qmgr[125]: 4AB12345: removed",
    });
    REQUIRE(run.rows.size() == 2);
    CHECK(run.rows[1].status == Status::sent);
    CHECK(run.rows[1].recipient == "bob@example.org");
    CHECK(run.rows[1].message_id == "m1@example.com");
    CHECK(run.rows[1].category == Category::success);
    CHECK(date_of(run.rows[1].time) == "2024-06-03 11:00:02");
    CHECK(run.tracker.open() == 0);
    run.tracker.finish();
    CHECK(run.rows.size() == 2);
}

TEST_CASE("tracker: expiry turns the still-deferred recipients Expired", "[log]") {
    Run run;
    run.feed({
        kQueued,
        "Jun  3 10:00:02 mx postfix/smtp[126]: 4AB12345: to=<bob@example.org>, relay=mx[192.0.2.1]:25, delay=1, "
        "delays=0/0/0/1, dsn=2.0.0, status=sent (250 2.0.0 Ok: queued as 9XYZ)",
        "Jun  3 10:00:02 mx postfix/smtp[126]: 4AB12345: to=<carol@example.org>, relay=none, delay=30, "
        "delays=0/0/30/0, dsn=4.4.1, status=deferred (connect to mx[192.0.2.1]:25: Connection timed out)",
        "Jun  8 10:00:05 mx postfix/qmgr[125]: 4AB12345: from=<alice@example.com>, status=expired, returned to sender",
        "Jun  8 10:00:05 mx postfix/qmgr[125]: 4AB12345: removed",
    });
    REQUIRE(run.rows.size() == 2);
    CHECK(run.rows[1].status == Status::expired);
    CHECK(run.rows[1].recipient == "carol@example.org");
    CHECK(run.rows[1].message == "connect to mx[192.0.2.1]:25: Connection timed out");
    CHECK(run.rows[1].category == Category::message_expired);
    CHECK(run.rows[1].enhanced == "4.4.1");
    CHECK(date_of(run.rows[1].time) == "2024-06-08 10:00:05");
}

TEST_CASE("tracker: rejects, removal while deferred, end of input", "[log]") {
    Run run;
    run.feed({
        "Jun  3 10:00:00 mx postfix/cleanup[124]: 5BC1234: message-id=<m2@example.com>",
        "Jun  3 10:00:00 mx postfix/cleanup[124]: 5BC1234: milter-reject: END-OF-MESSAGE from localhost[127.0.0.1]: "
        "5.7.1 Refused by preflight: SPF fail; from=<a@b.example> to=<c@d.example> proto=ESMTP helo=<h>",
        "Jun  3 10:00:01 mx postfix/smtpd[1]: NOQUEUE: reject: RCPT from x[192.0.2.9]: 554 5.7.1 <e@f.example>: "
        "Relay access denied; from=<s@g.example> to=<e@f.example> proto=ESMTP helo=<x>",
    });
    REQUIRE(run.rows.size() == 2);
    CHECK(run.rows[0].status == Status::rejected);
    CHECK(run.rows[0].queue_id == "5BC1234");
    CHECK(run.rows[0].message_id == "m2@example.com");
    CHECK(run.rows[0].sender == "a@b.example");
    CHECK(run.rows[0].message == "5.7.1 Refused by preflight: SPF fail");
    CHECK(run.rows[1].status == Status::rejected);
    CHECK(run.rows[1].recipient == "e@f.example");
    CHECK(run.rows[1].category == Category::relaying_issues);
    CHECK(run.tracker.open() == 0);  // the milter-rejected message is gone

    run.feed({
        "Jun  3 10:00:00 mx postfix/qmgr[125]: 7DE1234: from=<a@b.example>, size=1, nrcpt=1 (queue active)",
        "Jun  3 10:00:02 mx postfix/smtp[126]: 7DE1234: to=<x@y.example>, relay=none, delay=30, delays=0/0/30/0, "
        "dsn=4.4.1, status=deferred (connect to mx[192.0.2.1]:25: Connection timed out)",
        "Jun  3 10:00:00 mx postfix/qmgr[125]: 8EF1234: from=<a@b.example>, size=1, nrcpt=1 (queue active)",
        "Jun  3 10:00:02 mx postfix/smtp[126]: 8EF1234: to=<z@y.example>, relay=mx[192.0.2.1]:25, delay=1, "
        "delays=0/0/0/1, dsn=4.2.2, status=deferred (host mx[192.0.2.1] said: 452 4.2.2 Mailbox full (in reply to "
        "RCPT TO command))",
        "Jun  3 10:30:00 mx postfix/postsuper[9]: 7DE1234: removed",
    });
    REQUIRE(run.rows.size() == 3);
    CHECK(run.rows[2].status == Status::deferred);
    CHECK(run.rows[2].recipient == "x@y.example");
    run.tracker.finish();
    REQUIRE(run.rows.size() == 4);
    CHECK(run.rows[3].status == Status::deferred);
    CHECK(run.rows[3].category == Category::quota_issues);
    CHECK(run.rows[3].bounce == Bounce::soft);
}

TEST_CASE("tracker: a multi-line milter reply, logged with ?? between its lines, is one line again", "[log]") {
    Run run;
    run.feed({
        "Nov 25 19:18:27 mx postfix/cleanup[1]: 9AB12345: milter-reject: END-OF-MESSAGE from localhost[127.0.0.1]: "
        "5.7.26 nospf.test publishes no SPF record??550 5.7.26 SPF result: none; from=<a@nospf.test> "
        "to=<b@c.example> proto=ESMTP helo=<h>",
        "Nov 25 19:18:28 mx postfix/smtpd[2]: NOQUEUE: milter-reject: MAIL from x[192.0.2.1]: 550 5.7.27 one??550-5.7.27 "
        "two??550 5.7.27 three; from=<a@nullmx.test> proto=ESMTP helo=<h>",
    });
    REQUIRE(run.rows.size() == 2);
    CHECK(run.rows[0].message == "5.7.26 nospf.test publishes no SPF record SPF result: none");
    CHECK(run.rows[1].message == "550 5.7.27 one two three");
}

TEST_CASE("tracker: state is bounded and evicted after the queue lifetime", "[log]") {
    TrackerOptions o;
    o.queue_lifetime = 3600;
    Run run(o);
    run.feed({
        "Jun  3 10:00:00 mx postfix/qmgr[125]: 7DE1234: from=<a@b.example>, size=1, nrcpt=1 (queue active)",
        "Jun  3 10:00:02 mx postfix/smtp[126]: 7DE1234: to=<x@y.example>, relay=none, delay=30, delays=0/0/30/0, "
        "dsn=4.4.1, status=deferred (connect to mx[192.0.2.1]:25: Connection timed out)",
        "Jun  3 12:00:00 mx postfix/qmgr[125]: 8EF1234: from=<a@b.example>, size=1, nrcpt=1 (queue active)",
    });
    REQUIRE(run.rows.size() == 1);  // 7DE1234 unseen for 2 h > 1 h: written as Deferred
    CHECK(run.rows[0].status == Status::deferred);
    CHECK(run.tracker.open() == 1);
    CHECK(run.tracker.evicted() == 1);

    TrackerOptions small;
    small.max_open = 100;
    Run many(small);
    std::vector<std::string> lines;
    for (int i = 0; i < 1000; ++i)
        lines.push_back("Jun  3 10:00:00 mx postfix/qmgr[125]: AAA" + std::to_string(100000 + i) +
                        ": from=<a@b.example>, size=1, nrcpt=1 (queue active)");
    for (const auto& l : lines) many.feed({l});
    CHECK(many.tracker.open() <= 100);
    CHECK(many.tracker.evicted() >= 900);
}

TEST_CASE("DSN join: a Sent row becomes a Bounce", "[log]") {
    ReplyClassifier classifier(rules());
    std::string scratch;
    DeliveryRow row;
    row.status = Status::sent;
    row.queue_id = "4AB12345";
    row.message_id = "m1@example.com";
    row.recipient = "Bob@Example.org";
    row.message = "250 2.0.0 Ok: queued as 9XYZ";
    row.time.civil = 1000000;
    row.category = Category::success;

    auto rec = [](std::string q, std::string m, std::string r, std::int64_t t) {
        DsnRecord d;
        d.queue_id = std::move(q);
        d.message_id = std::move(m);
        d.recipient = std::move(r);
        d.time.civil = t;
        d.reason =
            "smtp; 550 5.1.1 <bob@example.org>: Recipient address rejected: User unknown in virtual mailbox table";
        return d;
    };
    SECTION("by our queue id") {
        DsnJoin join({rec("4AB12345", "", "bob@example.org", 0)});
        REQUIRE(join.apply(row, classifier, scratch));
        CHECK(row.status == Status::bounce);
        CHECK(row.category == Category::bad_mailbox);
        CHECK(row.bounce == Bounce::hard);
        CHECK(row.enhanced == "5.1.1");
        CHECK(row.message.find("User unknown") != std::string::npos);
        row.status = Status::sent;
        CHECK_FALSE(join.apply(row, classifier, scratch));  // each record once
    }
    SECTION("by the downstream queue id in the reply") {
        DsnJoin join({rec("9XYZ", "", "bob@example.org", 0)});
        CHECK(join.apply(row, classifier, scratch));
    }
    SECTION("by Message-ID, any recipient") {
        DsnJoin join({rec("", "m1@example.com", "", 0)});
        CHECK(join.apply(row, classifier, scratch));
    }
    SECTION("by recipient and time") {
        DsnJoin join({rec("", "", "bob@example.org", 1000000 - 3600), rec("", "", "bob@example.org", 1000000 + 600)});
        CHECK(join.apply(row, classifier, scratch));
        CHECK(join.used() == 1);
        DsnJoin late({rec("", "", "bob@example.org", 1000000 + 8 * 86400)});
        row.status = Status::sent;
        CHECK_FALSE(late.apply(row, classifier, scratch));
    }
    SECTION("only Sent rows, only failed DSNs") {
        DsnJoin join({rec("4AB12345", "", "", 0)});
        row.status = Status::deferred;
        CHECK_FALSE(join.apply(row, classifier, scratch));
        DsnRecord delayed = rec("4AB12345", "", "", 0);
        delayed.status = Status::deferred;
        DsnJoin j2({delayed});
        row.status = Status::sent;
        CHECK_FALSE(j2.apply(row, classifier, scratch));
    }
    CHECK(queued_as("250 2.0.0 Ok: queued as 4XyZ9 (x)") == "4XyZ9");
    CHECK(queued_as("250 ok").empty());
}

TEST_CASE("writers: CSV quoting, JSON Lines, UTF-8 cleaning", "[log]") {
    DeliveryRow r;
    r.time.civil = days_from_civil(2024, 6, 3) * 86400 + 3661;
    r.sender = "a@b";
    r.recipient = "\"odd, one\"@c";
    r.status = Status::bounce;
    r.message = "550 line1\r\nline2";
    r.queue_id = "Q1";
    r.category = Category::bad_mailbox;
    r.bounce = Bounce::hard;
    r.enhanced = "5.1.1";
    r.relay = "mx[1.2.3.4]:25";
    r.delay = "1.5";
    std::string out;
    TextRowWriter csv(RowFormat::csv, true);
    csv.header(out);
    csv.row(out, r);
    CHECK(out ==
          "Date,Sender,Recipient,Status,Status message,Queue ID,Category,Bounce type,Enhanced code,Relay,Delay\r\n"
          "2024-06-03 01:01:01,a@b,\"\"\"odd, one\"\"@c\",Bounce,\"550 line1\r\nline2\",Q1,bad-mailbox,hard,5.1.1,"
          "mx[1.2.3.4]:25,1.5\r\n");
    out.clear();
    TextRowWriter json(RowFormat::json, true);
    r.delay = "junk";
    r.sender = "bad\xff";
    json.row(out, r);
    CHECK(out ==
          "{\"date\": \"2024-06-03 01:01:01\", \"sender\": \"bad\xEF\xBF\xBD\", \"recipient\": \"\\\"odd, one\\\"@c\", "
          "\"status\": \"Bounce\", \"message\": \"550 line1\\r\\nline2\", \"queue_id\": \"Q1\", \"category\": "
          "\"bad-mailbox\", \"bounce_type\": \"hard\", \"enhanced_code\": \"5.1.1\", \"relay\": \"mx[1.2.3.4]:25\", "
          "\"delay\": null}\n");
    CHECK(clean_utf8("a\x01\xc3\xa9\xff") == "a\xEF\xBF\xBD\xc3\xa9\xEF\xBF\xBD");
    CHECK(clean_utf8("\xc3\xa9\xc3\xa9", 3) == "\xc3\xa9");
}

namespace {
std::string csv_cell(std::string_view s, CsvCells cells = CsvCells::neutralised) {
    std::string out;
    append_csv_field(out, s, cells);
    return out;
}
}  // namespace

TEST_CASE("CSV cells: values that start like a formula are neutralised (OWASP), quoting kept", "[log][csv]") {
    // Each trigger of OWASP's CSV injection list gets a leading apostrophe.
    CHECK(csv_cell("=cmd|'/Ccalc'!A0@gmail.example") == "'=cmd|'/Ccalc'!A0@gmail.example");
    CHECK(csv_cell("+1+1@example.com") == "'+1+1@example.com");
    CHECK(csv_cell("-2+3@example.com") == "'-2+3@example.com");
    CHECK(csv_cell("@SUM(1+1)") == "'@SUM(1+1)");
    CHECK(csv_cell("\t=1+1") == "\"'\t=1+1\"");  // a tab is also a separator: quoted too
    CHECK(csv_cell("\r=1+1") == "\"'\r=1+1\"");
    // Harmless values stay as they are; a trigger character later in the value is harmless.
    CHECK(csv_cell("alice@example.com") == "alice@example.com");
    CHECK(csv_cell("550 5.1.1 user=unknown -all @home") == "550 5.1.1 user=unknown -all @home");
    CHECK(csv_cell("") == "");
    CHECK(csv_cell("'=already") == "'=already");
    // Quoting per RFC 4180 after the apostrophe: '"' doubled, ',' CR LF inside quotes.
    CHECK(csv_cell("=HYPERLINK(\"http://x.example/?a,b\",\"click\")") ==
          "\"'=HYPERLINK(\"\"http://x.example/?a,b\"\",\"\"click\"\")\"");
    CHECK(csv_cell("a \"b\"") == "\"a \"\"b\"\"\"");
    CHECK(csv_cell("a,b") == "\"a,b\"");
    CHECK(csv_cell("line1\nline2") == "\"line1\nline2\"");
    CHECK(csv_cell("-x\r\ny") == "\"'-x\r\ny\"");
    // ';' (the separator of Excel in many locales) is quoted, so "x;=1+1" cannot become a cell
    // "=1+1" of its own.
    CHECK(csv_cell("x;=1+1") == "\"x;=1+1\"");
    // Raw: the values as they came, with RFC 4180 quoting only.
    CHECK(csv_cell("=cmd|'/Ccalc'!A0@gmail.example", CsvCells::raw) == "=cmd|'/Ccalc'!A0@gmail.example");
    CHECK(csv_cell("=a,\"b\"", CsvCells::raw) == "\"=a,\"\"b\"\"\"");
    CHECK(starts_like_formula("="));
    CHECK_FALSE(starts_like_formula(" =1"));
    CHECK_FALSE(starts_like_formula(""));
}

TEST_CASE("writers: every text cell of a CSV row is neutralised; --raw leaves them", "[log][csv]") {
    DeliveryRow r;
    r.time.civil = days_from_civil(2024, 6, 3) * 86400;
    r.sender = "-2+3@example.com";
    r.recipient = "=cmd|'/Ccalc'!A0@gmail.example";
    r.status = Status::bounce;
    r.message = "@SUM(1+1)*cmd|' /C calc'!A0";
    r.queue_id = "Q1";
    r.enhanced = "5.1.1";
    r.relay = "+relay";
    r.delay = "-1";
    std::string out;
    TextRowWriter(RowFormat::csv, true).row(out, r);
    CHECK(out ==
          "2024-06-03 00:00:00,'-2+3@example.com,'=cmd|'/Ccalc'!A0@gmail.example,Bounce,"
          "'@SUM(1+1)*cmd|' /C calc'!A0,Q1,other,none,5.1.1,'+relay,'-1\r\n");
    out.clear();
    TextRowWriter(RowFormat::csv, false, CsvCells::raw).row(out, r);
    CHECK(out ==
          "2024-06-03 00:00:00,-2+3@example.com,=cmd|'/Ccalc'!A0@gmail.example,Bounce,"
          "@SUM(1+1)*cmd|' /C calc'!A0\r\n");
    out.clear();
    TextRowWriter(RowFormat::json, false).row(out, r);  // JSON is for programs: as it came
    CHECK(out.find("\"recipient\": \"=cmd|'/Ccalc'!A0@gmail.example\"") != std::string::npos);
}

namespace {
// A LogInput serving a string in small pieces.
class StringInput : public LogInput {
public:
    StringInput(std::string s, std::size_t piece) : s_(std::move(s)), piece_(piece) {}
    long read(char* buf, std::size_t n, std::string&) override {
        std::size_t k = std::min({n, piece_, s_.size() - pos_});
        std::memcpy(buf, s_.data() + pos_, k);
        pos_ += k;
        return static_cast<long>(k);
    }
    std::int64_t mtime() const override { return 0; }

private:
    std::string s_;
    std::size_t piece_, pos_ = 0;
};
}  // namespace

TEST_CASE("line splitter: pieces, CRLF, over-long lines, last line without newline", "[log]") {
    std::string text = "one\r\ntwo\n" + std::string(200000, 'x') + "\nthree\n\nfour";
    for (std::size_t piece : {1u << 20, 7u, 65536u}) {
        StringInput in(text, piece);
        LineSplitter split;
        std::vector<std::string> lines;
        LineSplitter::OnLine on = [&](std::string_view l, bool too_long) {
            lines.push_back(too_long ? std::string("<too long>") : std::string(l));
        };
        std::string err;
        REQUIRE(split.pump(in, on, err) == 0);
        split.finish(on);
        CHECK(lines == std::vector<std::string>{"one", "two", "<too long>", "three", "", "four"});
    }
}

#include <cstdio>
#include <fstream>
#include <sstream>
#include <unistd.h>

#include "log_command.hpp"

TEST_CASE("log command: --dsn records from the loader turn a Sent row into a Bounce", "[log]") {
    char dir_template[] = "/tmp/preflight-log-unit.XXXXXX";
    REQUIRE(mkdtemp(dir_template));
    const std::string dir = dir_template, log = dir + "/maillog", out = dir + "/rows.json";
    {
        std::ofstream f(log);
        f << "2024-06-03T10:00:00Z mx postfix/cleanup[1]: 4AB12345: message-id=<m1@example.com>\n"
             "2024-06-03T10:00:01Z mx postfix/qmgr[2]: 4AB12345: from=<alice@example.com>, size=1, nrcpt=2 (queue active)\n"
             "2024-06-03T10:00:02Z mx postfix/smtp[3]: 4AB12345: to=<bob@example.org>, relay=mx[192.0.2.1]:25, "
             "delay=1, delays=0/0/0/1, dsn=2.0.0, status=sent (250 2.0.0 Ok: queued as 9XYZ)\n"
             "2024-06-03T10:00:02Z mx postfix/smtp[3]: 4AB12345: to=<carol@example.org>, relay=mx[192.0.2.1]:25, "
             "delay=1, delays=0/0/0/1, dsn=2.0.0, status=sent (250 2.0.0 Ok: queued as 9XYA)\n";
    }
    std::vector<std::string> dirs_asked;
    DsnLoader loader = [&](const std::string& d, std::vector<DsnRecord>& recs, std::string&) {
        dirs_asked.push_back(d);
        DsnRecord r;
        r.queue_id = "9XYZ";  // the downstream's id, as its DSN names it
        r.recipient = "bob@example.org";
        r.reason = "smtp; 552 5.2.2 <bob@example.org>: mailbox over quota";
        recs.push_back(r);
        return true;
    };
    int rc = run_log_command({"--format", "json", "--wide", "--dsn", "dsn-dir", "--output", out, log}, loader);
    CHECK(rc == 0);
    CHECK(dirs_asked == std::vector<std::string>{"dsn-dir"});
    std::ifstream in(out);
    std::stringstream ss;
    ss << in.rdbuf();
    std::string rows = ss.str();
    CHECK(rows.find("\"recipient\": \"bob@example.org\", \"status\": \"Bounce\", \"message\": \"smtp; 552 5.2.2") !=
          std::string::npos);
    CHECK(rows.find("\"category\": \"quota-issues\"") != std::string::npos);
    CHECK(rows.find("\"recipient\": \"carol@example.org\", \"status\": \"Sent\"") != std::string::npos);
    // Without a loader, --dsn is a usage error; a failing loader is an input error.
    CHECK(run_log_command({"--dsn", "x", log}) == 2);
    DsnLoader failing = [](const std::string& d, std::vector<DsnRecord>&, std::string& e) {
        e = d + ": cannot read";
        return false;
    };
    CHECK(run_log_command({"--dsn", "x", "--output", out, log}, failing) == 1);
    std::remove(out.c_str());
    std::remove(log.c_str());
    rmdir(dir.c_str());
}
