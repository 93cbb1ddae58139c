// The trace header: how a complaint that hides its recipient is still attributed.
//
// Feedback loops (ARF, RFC 5965) often redact the recipient from the report and from the returned
// message's To:, but keep the rest of the returned headers. For a message with one recipient the
// milter adds "X-Preflight-Trace: <token>", the token being a keyed HMAC-SHA256 of the sender
// domain and the recipient (the first 16 bytes, hex): the recipient cannot be read out of it, nor
// a token made for another address without the key. The milter also stores token -> (scope,
// recipient) in the suppression store for kTraceLifetime; `dsn --suppress` looks the token of a
// redacted complaint up there. Messages with several recipients get no header (one token cannot
// say which of them complained).
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace preflight {

inline constexpr std::string_view kTraceHeader = "X-Preflight-Trace";
inline constexpr std::int64_t kTraceLifetime = 60ll * 86400;  // complaints arrive within days, some weeks later

// The key from SuppressionTraceKeyFile: its bytes without trailing blanks, at least 16 of them.
// Nothing with error set ("FILE: why") otherwise.
std::optional<std::string> read_trace_key(const std::string& path, std::string& error);

// 32 lower-case hex digits: HMAC-SHA256(key, lower(sender_domain) "\n" recipient), first 16 bytes.
std::string trace_token(std::string_view key, std::string_view sender_domain, std::string_view recipient);

// The token in a header value ("  0123...cdef "), or nothing when it is not one.
std::optional<std::string> parse_trace_token(std::string_view value);

}  // namespace preflight
