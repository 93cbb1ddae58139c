// Plain-text parsers for bounce messages, kept free of GMime so that they can be tested on
// strings: the fields of an RFC 3464 message/delivery-status body, and the recipients and
// reasons of the non-standard bounces (qmail, Exim, Sendmail, Exchange, Gmail, ...) whose
// only account of the failure is text written for people.
#pragma once

#include <string>
#include <string_view>
#include <vector>

namespace preflight {

// One per-recipient block of a delivery-status body (RFC 3464 section 2.3).
struct DsnRecipientFields {
    std::string final_recipient, original_recipient;  // the address, type prefix removed
    std::string action;                               // lower-cased: failed, delayed, delivered, relayed, expanded
    std::string status;                               // "5.1.1", the comment removed
    std::string status_comment;  // "recipient reached disk quota" of "Status: 5.0.0 (recipient ...)"
    std::string diagnostic;      // the whole Diagnostic-Code value, continuation lines joined
    std::string remote_mta;      // type prefix removed
    // The final recipient, unless it is an MTA's internal address (a domain without a dot, as
    // Sun's "user@sims-ms-daemon") and the original recipient is known.
    const std::string& recipient() const {
        if (final_recipient.empty()) return original_recipient;
        std::size_t at = final_recipient.rfind('@');
        bool internal = at != std::string::npos && final_recipient.find('.', at) == std::string::npos;
        return internal && !original_recipient.empty() ? original_recipient : final_recipient;
    }
};

struct DsnFields {
    std::string reporting_mta, queue_id;  // per-message fields
    std::vector<DsnRecipientFields> recipients;
};

// Parses the fields of a delivery-status body. Tolerates a missing blank line between blocks
// (a new Final-Recipient starts a new recipient) and CRLF line ends. Fields of the returned
// message, if any follow, are ignored only once a recipient block ended.
DsnFields parse_delivery_status(std::string_view body);

// A recipient named in a bounce's text and the words around it that say why it failed.
struct FreeTextRecipient {
    std::string recipient;
    std::string reason;  // the lines that belong to this recipient, joined by single spaces
};

struct FreeTextBounce {
    std::vector<FreeTextRecipient> recipients;  // in the order the text names them
    std::string intro;                          // the text before the first recipient: the bounce's general wording
};

// Finds the failed recipients in a bounce's human-readable text (already decoded to UTF-8,
// with the returned message cut off: see cut_returned_message). ignore: addresses that are
// not recipients (the bounce's own From and To, the original sender), compared without case.
FreeTextBounce parse_free_text_bounce(std::string_view text, const std::vector<std::string>& ignore);

// The text up to the line that introduces the returned copy of the message ("--- Below this
// line is a copy of the message.", "----- Original message -----", a header block...).
std::string_view cut_returned_message(std::string_view text);

// An SMTP reply built from free text for the classifier: the first basic code that an MTA
// reported (after "said:", "<<<", at a line start...) and the first enhanced code, put in
// front of the text, so that "Remote host said: 550 User unknown" reads as a 550 reply.
std::string reply_from_text(std::string_view text);

// An Amazon SES notification (the JSON that SES sends by e-mail or through SNS, raw or inside
// the SNS envelope's "Message" string): its type and, as DSN fields, its recipients.
struct SesNotification {
    enum class Type { bounce, complaint, delivery } type = Type::bounce;
    std::string reporting_mta, message_id;
    std::vector<DsnRecipientFields> recipients;  // action failed/delivered, status, diagnostic
};

// Reads the first JSON object of text as an SES notification ("notificationType" or
// "eventType" Bounce, Complaint, Delivery); false when it is none.
bool parse_ses_notification(std::string_view text, SesNotification& out);

// Every e-mail address in s, in order (angle brackets and trailing punctuation removed).
std::vector<std::string> find_addresses(std::string_view s);

}  // namespace preflight
