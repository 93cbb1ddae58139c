#include "logger.hpp"

#include <syslog.h>
#include <unistd.h>

#include <string>

namespace preflight {
namespace {

bool g_stderr = true;
std::string g_ident = "preflight-milter";

}  // namespace

void Logger::init(std::string_view ident, bool to_stderr, int facility) {
    g_ident = std::string(ident);
    g_stderr = to_stderr;
    if (!to_stderr) openlog(g_ident.c_str(), LOG_PID | LOG_NDELAY, facility);
}

void Logger::log(Level level, std::string_view line) {
    if (!g_stderr) {
        int prio = level == Level::error ? LOG_ERR : level == Level::warning ? LOG_WARNING : LOG_INFO;
        syslog(prio, "%.*s", static_cast<int>(line.size()), line.data());
        return;
    }
    std::string out;
    out.reserve(g_ident.size() + line.size() + 16);
    out.append(g_ident).append(level == Level::error ? ": error: " : level == Level::warning ? ": warning: " : ": ");
    out.append(line).push_back('\n');
    ssize_t n = ::write(STDERR_FILENO, out.data(), out.size());
    (void)n;  // nowhere to report a failing stderr
}

void append_quoted(std::string& out, std::string_view key, std::string_view value) {
    if (!out.empty()) out.push_back(' ');
    out.append(key).append("=\"");
    for (char c : value) {
        unsigned char u = static_cast<unsigned char>(c);
        if (u < 0x20 || u == 0x7f) continue;
        if (c == '"' || c == '\\') out.push_back('\\');
        out.push_back(c);
    }
    out.push_back('"');
}

}  // namespace preflight
