// Closed vocabularies of the classifier: the delivery status a relay records, the bounce
// type, the 17 PowerMTA-style categories plus "success", and where a reply came from.
#pragma once

#include <optional>
#include <string_view>

namespace preflight {

// The five statuses of the seeds' delivery log, in the order a message can reach them.
enum class Status { sent, deferred, bounce, rejected, expired };

// hard: the address or domain will never accept mail; soft: it may later; none: not a failure.
enum class Bounce { none, soft, hard };

enum class Category {
    bad_configuration,    // the receiving server is misconfigured
    bad_connection,       // the connection failed or dropped on the way
    bad_domain,           // the recipient domain does not exist or takes no mail (hard)
    bad_mailbox,          // the recipient address does not exist or is malformed (hard)
    content_related,      // the message content or size was refused
    inactive_mailbox,     // the mailbox exists but is disabled, suspended or expired (hard)
    invalid_sender,       // the sender address or sender domain was refused
    message_expired,      // retried until the queue lifetime ran out
    no_answer_from_host,  // the receiving host did not answer
    other,                // none of the others; read the reply
    policy_related,       // a receiver policy: authentication, rate, reputation rules
    protocol_errors,      // SMTP syntax or sequence errors
    quota_issues,         // mailbox or system storage full, over a receiver quota
    relaying_issues,      // the receiver will not relay for us
    routing_errors,       // no route, mail loop, routing server failure
    spam_related,         // refused as spam or for the sender's reputation / block lists
    virus_related,        // refused as infected or dangerous
    success,              // 2xx: accepted by the receiver
};
inline constexpr int kCategoryCount = static_cast<int>(Category::success) + 1;

enum class Origin { remote, edge };

std::string_view to_string(Status s);
std::string_view to_string(Bounce b);
std::string_view to_string(Category c);

std::optional<Status> parse_status(std::string_view s);
std::optional<Bounce> parse_bounce(std::string_view s);
std::optional<Category> parse_category(std::string_view s);

// hard for the categories that say the address or domain is permanently bad.
Bounce default_bounce(Category c);

}  // namespace preflight
