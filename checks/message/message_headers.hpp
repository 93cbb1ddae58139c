// The header fields the message checks read (RFC 5322 3.6's originator, destination and
// identification fields, the List-* fields and Precedence), kept as the MTA hands them over, and
// the address parser for From and Sender.
//
// Memory is bounded whatever the client sends: every field is counted, but only the first few
// occurrences of a field the checks read are kept, each value capped; other fields are counted
// only. A header of 1 MiB or 10,000 To lines costs a few KiB here.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace preflight {

// The fields the message checks look at.
enum class Field : std::uint8_t {
    from,
    sender,
    reply_to,
    to,
    cc,
    bcc,
    date,
    message_id,
    in_reply_to,
    references,
    subject,
    list_id,
    list_unsubscribe,
    list_unsubscribe_post,
    precedence,
};
inline constexpr std::size_t field_count = static_cast<std::size_t>(Field::precedence) + 1;

std::string_view field_name(Field f);  // "From", "Message-ID", "List-Unsubscribe-Post", ...

class MessageHeaders {
public:
    static constexpr std::size_t kept_per_field = 4;  // occurrences whose value is kept
    static constexpr std::size_t max_value = 4096;    // octets kept of one value

    // One header field: name without the colon, value as the MTA hands it over (a leading blank
    // and folding are allowed).
    void add(std::string_view name, std::string_view value);

    std::size_t count(Field f) const { return count_[static_cast<std::size_t>(f)]; }
    // The kept values of f, in order (at most kept_per_field), blanks around them trimmed.
    const std::vector<std::string>& values(Field f) const { return values_[static_cast<std::size_t>(f)]; }
    const std::string* first(Field f) const;

private:
    std::array<std::uint32_t, field_count> count_{};
    std::array<std::vector<std::string>, field_count> values_{};
};

// An RFC 5322 mailbox-list (From; Sender holds one mailbox), with display names, comments,
// quoted strings and folding: the domain of each mailbox, lower case, in order. A value that is
// not a mailbox list gives error (why, for the reply) and no domains. Groups ("undisclosed:;")
// are not mailboxes and are an error here.
struct MailboxList {
    std::vector<std::string> domains;
    std::string error;
};
MailboxList parse_mailbox_list(std::string_view value);

// RFC 5322 3.3 date-time (obsolete zones and a missing seconds field allowed): true if parsable.
bool valid_date_time(std::string_view value);

// RFC 5322 3.6.4 msg-id: "<" id-left "@" id-right ">" with optional CFWS around it.
bool valid_msg_id(std::string_view value);

}  // namespace preflight
