// The one logger of both daemons: a line per event (preflight-milter: one key=value line per
// decision), to syslog or, in the foreground, to stderr. Lines are written whole with one
// write(2) so that concurrent sessions never interleave inside a line; anything a stranger wrote
// goes through append_quoted, so that it cannot forge or split a log line.
#pragma once

#include <string>
#include <string_view>

namespace preflight {

class Logger {
public:
    enum class Level { error, warning, info };
    // to_stderr: foreground; otherwise syslog with the given facility (LOG_MAIL, ...).
    static void init(std::string_view ident, bool to_stderr, int facility);
    static void log(Level level, std::string_view line);
};

// Appends key="value" with quotes and backslashes escaped and control characters dropped,
// so a hostile address or reply text cannot forge or split log lines.
void append_quoted(std::string& out, std::string_view key, std::string_view value);

}  // namespace preflight
