#include "postfix_log.hpp"

#include "ascii.hpp"
#include <ctime>

namespace preflight {
namespace {

using sv = std::string_view;

// n digits at s[i]; -1 if any is not a digit or s is too short.
int digits(sv s, std::size_t i, std::size_t n) {
    if (i + n > s.size()) return -1;
    int v = 0;
    for (std::size_t k = 0; k < n; ++k) {
        char c = s[i + k];
        if (!ascii::is_digit(c)) return -1;
        v = v * 10 + (c - '0');
    }
    return v;
}

int month_from_name(sv s) {
    static constexpr sv kMonths[] = {"Jan", "Feb", "Mar", "Apr", "May", "Jun",
                                     "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"};
    for (int m = 0; m < 12; ++m)
        if (s == kMonths[m]) return m + 1;
    return 0;
}

// "HH:MM:SS[.frac]" at s[i]; advances i past it. false if not there or out of range.
bool parse_clock(sv s, std::size_t& i, std::int64_t& secs, std::int32_t& usec) {
    int h = digits(s, i, 2), m = digits(s, i + 3, 2), sec = digits(s, i + 6, 2);
    if (h < 0 || m < 0 || sec < 0 || s[i + 2] != ':' || s[i + 5] != ':') return false;
    if (h > 23 || m > 59 || sec > 60) return false;
    secs = h * 3600 + m * 60 + sec;
    i += 8;
    usec = 0;
    if (i < s.size() && s[i] == '.') {
        ++i;
        std::size_t start = i;
        int scale = 100000;
        while (i < s.size() && ascii::is_digit(s[i])) {
            if (scale) usec += (s[i] - '0') * scale, scale /= 10;
            ++i;
        }
        if (i == start) return false;
    }
    return true;
}

int days_in_month(int y, int m) {
    static constexpr int kDays[] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    bool leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
    return m == 2 && leap ? 29 : kDays[m - 1];
}

// "YYYY-MM-DD[T ]HH:MM:SS[.frac][Z|+HH:MM|+HHMM]" at the start of line: RFC 3339 (rsyslog's
// high-precision format, journalctl -o short-iso and short-iso-precise) and maillog_file's
// "YYYY-MM-DD HH:MM:SS.frac". why says which part is bad.
bool parse_iso_timestamp(sv line, LogTime& t, std::size_t& pos, sv& why) {
    int y = digits(line, 0, 4), mo = digits(line, 5, 2), d = digits(line, 8, 2);
    if (y < 0 || mo < 0 || d < 0 || line[4] != '-' || line[7] != '-') {
        why = "timestamp: date not YYYY-MM-DD";
        return false;
    }
    if (mo < 1 || mo > 12 || d < 1 || d > days_in_month(y, mo)) {
        why = "timestamp: no such date";
        return false;
    }
    if (line[10] != 'T' && line[10] != 't' && line[10] != ' ') {
        why = "timestamp: no 'T' or blank between date and time";
        return false;
    }
    std::size_t i = 11;
    std::int64_t clock = 0;
    if (!parse_clock(line, i, clock, t.usec)) {
        why = "timestamp: time not HH:MM:SS[.fraction] or out of range";
        return false;
    }
    t.offset = 0;
    if (i < line.size() && (line[i] == 'Z' || line[i] == 'z')) {
        ++i;
    } else if (i < line.size() && (line[i] == '+' || line[i] == '-')) {
        int sign = line[i] == '-' ? -1 : 1;
        int oh = digits(line, i + 1, 2);
        std::size_t j = i + 3;
        if (j < line.size() && line[j] == ':') ++j;
        int om = digits(line, j, 2);
        if (oh < 0 || om < 0 || oh > 23 || om > 59) {
            why = "timestamp: zone offset not +HH:MM or +HHMM";
            return false;
        }
        t.offset = sign * (oh * 3600 + om * 60);
        i = j + 2;
    }
    t.civil = days_from_civil(y, static_cast<unsigned>(mo), static_cast<unsigned>(d)) * 86400 + clock;
    pos = i;
    return true;
}

// "Mmm dd HH:MM:SS[.frac]" (day padded with a blank or a zero): syslog, journalctl -o short.
bool parse_syslog_timestamp(sv line, const YearReference& ref, LogTime& t, std::size_t& pos) {
    int mo = month_from_name(line.substr(0, 3));
    if (!mo || line[3] != ' ') return false;
    std::size_t i = 4;
    if (line[i] == ' ') ++i;
    int d = 0;
    std::size_t start = i;
    while (i < line.size() && ascii::is_digit(line[i]) && i - start < 2) d = d * 10 + (line[i++] - '0');
    if (i == start || d < 1 || d > 31 || i >= line.size() || line[i] != ' ') return false;
    ++i;
    std::int64_t clock = 0;
    if (!parse_clock(line, i, clock, t.usec)) return false;
    int y = ref.year;
    t.civil = days_from_civil(y, static_cast<unsigned>(mo), static_cast<unsigned>(d)) * 86400 + clock;
    if (t.civil > ref.civil + 86400)
        t.civil = days_from_civil(y - 1, static_cast<unsigned>(mo), static_cast<unsigned>(d)) * 86400 + clock;
    t.offset = 0;
    pos = i;
    return true;
}

// The timestamp at the start of line; pos is set past it (at the blank before the host).
bool parse_timestamp(sv line, const YearReference& ref, LogTime& t, std::size_t& pos, sv& why) {
    why = "no timestamp at its start";
    if (line.size() < 16) return false;
    // Four digits and '-' can only be meant as an ISO date: say what is wrong with it.
    const bool iso = digits(line, 0, 4) >= 0 && line[4] == '-';
    if (iso ? !parse_iso_timestamp(line, t, pos, why) : !parse_syslog_timestamp(line, ref, t, pos)) return false;
    if (pos < line.size() && line[pos] == ' ') return true;
    why = iso ? "timestamp: not followed by a blank" : "no timestamp at its start";
    return false;
}

// "<addr>" value starting at s[i] == '<': the address; i is set past the closing '>' that is
// followed by one of the terminators (", " for delivery fields, " " or end for reject lines).
bool bracketed(sv s, std::size_t& i, sv terminator, sv& out) {
    if (i >= s.size() || s[i] != '<') return false;
    std::size_t close = s.find(terminator, i + 1);
    // The '>' that ends the address is the last one before the terminator.
    while (close != sv::npos && s[close - 1] != '>') close = s.find(terminator, close + 1);
    if (close == sv::npos) {
        if (s.back() != '>' || s.size() - 1 <= i) return false;
        close = s.size();
    }
    out = s.substr(i + 1, close - 1 - (i + 1));
    i = close;
    return true;
}

LineResult malformed(sv& why, sv what) {
    why = what;
    return LineResult::malformed;
}

// "to=<r>, orig_to=<o>, relay=x, delay=1.2, delays=a/b/c/d, dsn=5.1.1, status=bounced (text)"
LineResult parse_delivery(sv rest, LogEvent& ev, sv& why) {
    std::size_t i = 3;  // at '<'
    if (!bracketed(rest, i, ", ", ev.recipient)) return malformed(why, "to=<...> not closed by '>, '");
    bool have_status = false;
    while (i < rest.size()) {
        if (rest.compare(i, 2, ", ") != 0) return malformed(why, "expected ', ' between delivery fields");
        i += 2;
        std::size_t eq = rest.find('=', i);
        if (eq == sv::npos) return malformed(why, "delivery field without '='");
        sv key = rest.substr(i, eq - i);
        i = eq + 1;
        if (key == "status") {
            std::size_t end = rest.find(' ', i);
            sv word = rest.substr(i, end == sv::npos ? sv::npos : end - i);
            if (word == "sent") ev.word = DeliveryWord::sent;
            else if (word == "deferred" || word == "SOFTBOUNCE") ev.word = DeliveryWord::deferred;
            else if (word == "bounced") ev.word = DeliveryWord::bounced;
            else if (word == "expired") ev.word = DeliveryWord::expired;
            else return LineResult::ignored;  // deliverable/undeliverable: address probes
            ev.text = {};
            if (end != sv::npos) {
                sv text = rest.substr(end + 1);
                if (text.size() >= 2 && text.front() == '(' && text.back() == ')')
                    text = text.substr(1, text.size() - 2);
                ev.text = text;
            }
            have_status = true;
            break;
        }
        sv value;
        if (i < rest.size() && rest[i] == '<') {
            if (!bracketed(rest, i, ", ", value)) return malformed(why, "<...> field not closed");
        } else {
            std::size_t end = rest.find(", ", i);
            if (end == sv::npos) end = rest.size();
            value = rest.substr(i, end - i);
            i = end;
        }
        if (key == "relay") ev.relay = value;
        else if (key == "delay") ev.delay = value;
        else if (key == "dsn") ev.dsn = value;
    }
    if (!have_status) return malformed(why, "delivery line without status=");
    ev.kind = EventKind::delivery;
    return LineResult::event;
}

// After "reject: " or "milter-reject: ". smtpd/postscreen/milter:
//   "RCPT from host[1.2.3.4]: 554 5.7.1 text; from=<s> to=<r> proto=ESMTP helo=<h>"
// cleanup header/body checks (and milters at their stage):
//   "header Subject: x from host[1.2.3.4]; from=<s> to=<r> proto=ESMTP helo=<h>: 5.7.1 text"
LineResult parse_reject(sv rest, LogEvent& ev, sv& why) {
    std::size_t env = rest.find("; from=<");
    if (env == sv::npos) env = rest.find("; proto=");
    sv reply;
    bool cleanup_style = !rest.empty() && rest[0] >= 'a' && rest[0] <= 'z';
    if (!cleanup_style) {
        std::size_t from = rest.find(" from ");
        if (from == sv::npos) return malformed(why, "reject line without 'from CLIENT'");
        std::size_t colon = rest.find(": ", from + 6);
        if (colon == sv::npos || (env != sv::npos && colon > env))
            return malformed(why, "reject line without ': ' before its reply");
        reply = rest.substr(colon + 2, env == sv::npos ? sv::npos : env - colon - 2);
    } else {
        if (env == sv::npos) return malformed(why, "header/body reject without '; from=<'");
        std::size_t helo = rest.find(" helo=<", env);
        std::size_t colon = helo != sv::npos ? rest.find(">: ", helo) : sv::npos;
        if (colon != sv::npos) colon += 1;
        else colon = rest.find(": ", env);
        if (colon == sv::npos) return malformed(why, "header/body reject without its reply");
        reply = rest.substr(colon + 2);
    }
    while (!reply.empty() && (reply.back() == ' ' || reply.back() == '\t')) reply.remove_suffix(1);
    if (reply.empty()) return malformed(why, "reject line with an empty reply");
    ev.text = reply;
    if (env != sv::npos && rest.compare(env, 8, "; from=<") == 0) {
        std::size_t i = env + 7;
        if (!bracketed(rest, i, " ", ev.sender)) return malformed(why, "reject from=<...> not closed");
        if (rest.compare(i, 5, " to=<") == 0) {
            i += 4;
            if (!bracketed(rest, i, " ", ev.recipient)) return malformed(why, "reject to=<...> not closed");
        }
    }
    ev.kind = EventKind::reject;
    return LineResult::event;
}

bool starts(sv s, sv prefix) { return s.substr(0, prefix.size()) == prefix; }

}  // namespace

std::int64_t days_from_civil(int y, unsigned m, unsigned d) {
    y -= m <= 2;
    const std::int64_t era = (y >= 0 ? y : y - 399) / 400;
    const unsigned yoe = static_cast<unsigned>(y - era * 400);
    const unsigned doy = (153 * (m > 2 ? m - 3 : m + 9) + 2) / 5 + d - 1;
    const unsigned doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    return era * 146097 + static_cast<std::int64_t>(doe) - 719468;
}

std::size_t LogTime::format(char* buf) const {
    std::int64_t days = civil >= 0 ? civil / 86400 : (civil - 86399) / 86400;
    std::int64_t secs = civil - days * 86400;
    // civil_from_days (H. Hinnant)
    std::int64_t z = days + 719468;
    const std::int64_t era = (z >= 0 ? z : z - 146096) / 146097;
    const unsigned doe = static_cast<unsigned>(z - era * 146097);
    const unsigned yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
    const unsigned doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    const unsigned mp = (5 * doy + 2) / 153;
    const unsigned d = doy - (153 * mp + 2) / 5 + 1;
    const unsigned m = mp < 10 ? mp + 3 : mp - 9;
    std::int64_t y = static_cast<std::int64_t>(yoe) + era * 400 + (m <= 2);
    if (y < 0 || y > 9999) y = 0;
    auto put = [&](std::size_t at, std::int64_t v, int n) {
        for (int k = n - 1; k >= 0; --k, v /= 10)
            buf[at + static_cast<std::size_t>(k)] = static_cast<char>('0' + v % 10);
    };
    put(0, y, 4);
    buf[4] = '-';
    put(5, m, 2);
    buf[7] = '-';
    put(8, d, 2);
    buf[10] = ' ';
    put(11, secs / 3600, 2);
    buf[13] = ':';
    put(14, secs / 60 % 60, 2);
    buf[16] = ':';
    put(17, secs % 60, 2);
    return 19;
}

double LogTime::excel_serial() const { return static_cast<double>(civil) / 86400.0 + 25569.0; }

YearReference YearReference::from_time(std::int64_t unix_seconds) {
    std::time_t t = static_cast<std::time_t>(unix_seconds);
    std::tm tm{};
    localtime_r(&t, &tm);
    YearReference r;
    r.year = tm.tm_year + 1900;
    r.civil = days_from_civil(r.year, static_cast<unsigned>(tm.tm_mon + 1), static_cast<unsigned>(tm.tm_mday)) * 86400 +
              tm.tm_hour * 3600 + tm.tm_min * 60 + tm.tm_sec;
    return r;
}

std::string_view remote_reply(std::string_view text) {
    if (starts(text, "host ")) {
        std::size_t said = text.find(" said: ");
        if (said != sv::npos) return text.substr(said + 7);
    }
    return text;
}

LineResult parse_log_line(std::string_view line, const YearReference& ref, LogEvent& ev, std::string_view& why) {
    // journalctl's own lines: "-- Logs begin at ... --", "-- Boot 3f2a... --", "-- Reboot --",
    // "-- No entries --".
    if (starts(line, "-- ") && line.size() >= 6 && line.substr(line.size() - 3) == " --") return LineResult::ignored;
    std::size_t pos = 0;
    if (!parse_timestamp(line, ref, ev.time, pos, why)) return LineResult::not_a_log;
    // host, then "tag: " (the tag is "postfix/smtp[123]" or "name[pid]" or "name").
    std::size_t host_end = line.find(' ', pos + 1);
    if (host_end == sv::npos || host_end == pos + 1) {
        why = "no host after the timestamp";
        return LineResult::not_a_log;
    }
    std::size_t tag_end = line.find(": ", host_end + 1);
    if (tag_end == sv::npos) return LineResult::ignored;  // "last message repeated", kernel noise
    sv tag = line.substr(host_end + 1, tag_end - host_end - 1);
    std::size_t slash = tag.find('/');
    if (slash == sv::npos || tag.find(' ') != sv::npos) return LineResult::ignored;  // not Postfix
    sv msg = line.substr(tag_end + 2);

    ev.queue_id = {};
    ev.sender = ev.recipient = ev.message_id = ev.relay = ev.delay = ev.dsn = ev.text = {};
    ev.milter = false;

    if (starts(msg, "NOQUEUE: ")) {
        sv rest = msg.substr(9);
        if (starts(rest, "reject: ")) return parse_reject(rest.substr(8), ev, why);
        if (starts(rest, "milter-reject: ")) {
            ev.milter = true;
            return parse_reject(rest.substr(15), ev, why);
        }
        return LineResult::ignored;
    }
    std::size_t q = 0;
    while (q < msg.size() && ascii::is_alnum(msg[q])) ++q;
    if (q < 5 || q > 20 || msg.compare(q, 2, ": ") != 0) return LineResult::ignored;
    ev.queue_id = msg.substr(0, q);
    sv rest = msg.substr(q + 2);
    switch (rest.empty() ? '\0' : rest[0]) {
    case 't':
        if (starts(rest, "to=<")) return parse_delivery(rest, ev, why);
        break;
    case 'f':
        if (starts(rest, "from=<")) {
            std::size_t i = 5;
            if (!bracketed(rest, i, ", ", ev.sender)) return malformed(why, "from=<...> not closed by '>, '");
            sv tail = rest.substr(i);
            if (starts(tail, ", size=")) {
                ev.kind = EventKind::queued;
                return LineResult::event;
            }
            if (starts(tail, ", status=expired")) {
                ev.kind = EventKind::expired;
                return LineResult::event;
            }
        }
        break;
    case 'm':
        if (starts(rest, "message-id=")) {
            sv id = rest.substr(11);
            if (id.size() >= 2 && id.front() == '<' && id.back() == '>') id = id.substr(1, id.size() - 2);
            ev.message_id = id;
            ev.kind = EventKind::message_id;
            return LineResult::event;
        }
        if (starts(rest, "milter-reject: ")) {
            ev.milter = true;
            return parse_reject(rest.substr(15), ev, why);
        }
        break;
    case 'r':
        if (rest == "removed") {
            ev.kind = EventKind::removed;
            return LineResult::event;
        }
        if (starts(rest, "reject: ")) return parse_reject(rest.substr(8), ev, why);
        break;
    default: break;
    }
    return LineResult::ignored;
}

}  // namespace preflight
