// The one table of every reply preflight-milter can send, and the function that formats it.
//
// Each ReplyId has one row: basic code, enhanced code (RFC 3463), the basic code of its 4xx twin,
// and a text template with named placeholders. Nothing else in preflight writes SMTP text.
//
// Template language (kept tiny, scanned by hand):
//   {name}              the value of ReplyArgs::name, sanitised
//   {name?then}         `then` if the value is non-empty (then may hold placeholders)
//   {name?then|else}    `then` if non-empty, else `else`
//   '\n'                a line break: the reply becomes multi-line (smfi_setmlreply)
// Lines that come out empty are dropped.
//
// The 4xx twin (Mode tempfail, UnknownDomainCode 450): the enhanced code keeps subject and detail
// and only its class becomes 4 (RFC 3463 defines subject.detail independently of the class), so
// the table stores only the twin's basic code, which is not derivable (552 -> 452, 553 -> 450,
// 501 -> 451). Rows that are 4xx already have temp_code == code.
//
// Safety of the output: every substituted value has control characters (CR, LF, NUL, ...)
// removed, non-ASCII bytes shown as '?', and its length capped; long lines are wrapped at spaces
// to at most max_line_text octets (inside RFC 5321's 512-octet reply line, and inside libmilter's
// 980 even after '%' doubling); at most max_reply_lines lines (smfi_setmlreply's limit).
#pragma once

#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "verdict.hpp"

namespace preflight {

struct ReplyRow {
    ReplyId id;
    int code;                   // 2xx/4xx/5xx basic code used when the verdict rejects
    std::string_view enhanced;  // "5.7.26"
    int temp_code;              // basic code of the 4xx twin (== code when already 4xx)
    std::string_view text;      // template
};

inline constexpr std::size_t max_reply_lines = 32;    // smfi_setmlreply
inline constexpr std::size_t max_line_text = 400;     // text octets per line, before '%' doubling
inline constexpr std::size_t max_arg_length = 256;    // octets per substituted value
inline constexpr std::size_t max_header_value = 900;  // tag header value, before folding

// The last line of every refusal (every reply of 4xx and 5xx): who refused. A sender reads in the
// bounce that the sending relay refused the message, not the recipient's server, and
// preflight-classify's shipped rules (conf/rules/providers.rules) recognise the relay's own
// refusals by it. Changing it means changing those rules: tests/unit/checks/replies/test_edge_replies.cpp checks
// that every reply of the table is still classified as rejected by the relay.
inline constexpr std::string_view refusal_marker =
    "Refused by the sending relay's preflight check, not by the recipient's mail server";

// The table, indexed by ReplyId.
std::span<const ReplyRow> reply_table();
const ReplyRow& reply_row(ReplyId id);
// Whether the reply's text shows the named argument ("reason" for {reason}). An argument a
// reply does not show (a store's error, naming its host, port and user) is the log's to carry.
bool reply_shows(ReplyId id, std::string_view arg);

struct SmtpReply {
    int code = 250;
    std::string enhanced;  // "5.7.26"
    // One entry per reply line, ready for smfi_setmlreply / smfi_setreply: sanitised, wrapped,
    // and with every '%' doubled (libmilter and sendmail treat '%' as a format character).
    std::vector<std::string> lines;
};

// The reply for a verdict, refusal_marker as its last line when it refuses. The 4xx twin is used when the verdict ends in tempfail, or when a
// tagged / dry-run verdict came from a tempfail; ReplyId::none gives 250 2.0.0 OK.
SmtpReply render(const Verdict& v);
// render(v).code without formatting the text (no allocation): for counting decisions.
int reply_code(const Verdict& v);

// The reply as one line for the log: "550 5.7.26 text; more text" ('%' not doubled).
std::string reply_text(const SmtpReply& r);

// Tag mode: X-Preflight-<Check>: <code> <enhanced> <text>. The value is sanitised, capped and
// folded at spaces with "\n\t" (as smfi_addheader expects: LF, no CR, then whitespace).
struct TagHeader {
    std::string name;  // "X-Preflight-Sender-Domain"
    std::string value;
};
TagHeader tag_header(const Verdict& v);

// For tests and for checking the table: the problems of a template (unknown placeholder names,
// unbalanced braces), and the placeholders a verdict's reply needs but whose value is empty.
std::vector<std::string> template_problems(std::string_view text);
std::vector<std::string> missing_args(const Verdict& v);

// The line step of render(), exposed for tests: splits at '\n', drops empty lines, wraps at
// spaces to max_line_text octets, keeps at most max_reply_lines (the last one ending in "...").
std::vector<std::string> reply_lines(std::string_view text);

// "5.7.26" -> "4.7.26"
std::string temp_enhanced(std::string_view enhanced);

}  // namespace preflight
