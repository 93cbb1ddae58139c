// RFC 5322 header sanity (see header_sanity.hpp).
#include "header_sanity.hpp"

#include <string>
#include <vector>

namespace preflight {
namespace {

constexpr std::size_t kMaxNamed = 3;  // problems named in one reply; the first ones are the fix

// "no Date header", "2 Date headers (exactly one allowed)"
void exactly_one(const MessageHeaders& h, Field f, std::vector<std::string>& problems) {
    const std::size_t n = h.count(f);
    if (n == 0) problems.push_back("no " + std::string(field_name(f)) + " header");
    else if (n > 1)
        problems.push_back(std::to_string(n) + " " + std::string(field_name(f)) + " headers (exactly one allowed)");
}

// The From field: one mailbox list, several mailboxes only with a Sender (RFC 5322 3.6.2).
void check_from(const MessageHeaders& h, std::vector<std::string>& problems) {
    exactly_one(h, Field::from, problems);
    const std::string* from = h.first(Field::from);
    if (!from) return;
    MailboxList list = parse_mailbox_list(*from);
    if (!list.error.empty()) {
        problems.push_back("the From address cannot be parsed (" + list.error + ")");
        return;
    }
    if (list.domains.size() > 1 && h.count(Field::sender) == 0)
        problems.push_back("From names " + std::to_string(list.domains.size()) +
                           " mailboxes but there is no Sender header");
    if (const std::string* sender = h.first(Field::sender)) {
        MailboxList s = parse_mailbox_list(*sender);
        if (!s.error.empty()) problems.push_back("the Sender address cannot be parsed (" + s.error + ")");
        else if (s.domains.size() != 1) problems.push_back("Sender names more than one mailbox");
    }
}

}  // namespace

Verdict check_header_sanity(const MessageHeaders& h) {
    std::vector<std::string> problems;
    check_from(h, problems);
    exactly_one(h, Field::date, problems);
    if (h.count(Field::date) == 1 && !valid_date_time(*h.first(Field::date)))
        problems.push_back("the Date header is not an RFC 5322 date (e.g. Mon, 07 Dec 2026 10:00:00 +0000)");
    exactly_one(h, Field::message_id, problems);
    if (h.count(Field::message_id) == 1 && !valid_msg_id(*h.first(Field::message_id)))
        problems.push_back("the Message-ID is not of the form <unique@domain>");
    for (Field f : {Field::sender, Field::reply_to, Field::to, Field::cc, Field::bcc, Field::in_reply_to,
                    Field::references, Field::subject})
        if (h.count(f) > 1)
            problems.push_back(std::to_string(h.count(f)) + " " + std::string(field_name(f)) +
                               " headers (at most one allowed)");
    if (problems.empty()) return Verdict::accept(check_name::headers);
    ReplyArgs a;
    for (std::size_t i = 0; i < problems.size() && i < kMaxNamed; ++i) {
        if (i) a.problem += "; ";
        a.problem += problems[i];
    }
    return Verdict::reject(check_name::headers, ReplyId::header_invalid, std::move(a));
}

}  // namespace preflight
