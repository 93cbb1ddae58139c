// preflight-milter --test-message: a message file run through MessageSession exactly as the
// milter runs a transaction (MAIL FROM, each RCPT TO, the headers, the body, end of message),
// with the conf's checks, modes and Domain lines, and each verdict printed with its reply. No
// second decision path: what it prints is what the milter would answer. It reserves no sending
// quota (a test must not use up a campaign's quota), and says so when the conf sets one.
#pragma once

#include <iosfwd>
#include <memory>
#include <string>
#include <vector>

#include "config.hpp"
#include "dns.hpp"

namespace preflight {

struct TestMessageRequest {
    std::string file;                // the message: headers, a blank line, the body (LF or CRLF)
    std::string from;                // envelope sender; "" is the null sender <>
    std::vector<std::string> rcpts;  // envelope recipients, in order
    bool json = false;               // one JSON object instead of text
};

// 0: the milter would accept the message for every recipient; 1: it would refuse it (at MAIL
// FROM, for some recipient, or at end of message), tempfails included; 2: the file cannot be
// read (the reason on err).
int run_test_message(const TestMessageRequest& req, std::shared_ptr<const Config> config, Resolver& resolver,
                     std::ostream& out, std::ostream& err);

// The message split as an MTA hands it to a milter: header fields (name, value after the colon
// with folding kept as LF) up to the first line that is not a header, then the body with CRLF
// line ends. A leading mbox "From " line is skipped.
struct SplitMessage {
    std::vector<std::pair<std::string, std::string>> headers;
    std::string body;
};
SplitMessage split_message(std::string_view text);

}  // namespace preflight
