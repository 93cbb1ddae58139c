#include "command_common.hpp"

#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <iostream>
#include <thread>

namespace preflight {

std::shared_ptr<const RuleSet> load_rules(const std::vector<std::string>& site_files) {
    try {
        RuleSetBuilder builder;
        for (const auto& f : site_files) builder.add_file(f);
        return builder.add_shipped().build();
    } catch (const RuleError& e) {
        std::cerr << "preflight-classify: " << e.what() << "\n";
        return nullptr;
    }
}

bool write_all(std::string& out) { return write_all(STDOUT_FILENO, out); }

bool write_all(int fd, std::string& out) {
    const char* p = out.data();
    std::size_t left = out.size();
    while (left) {
        ssize_t n = ::write(fd, p, left);
        if (n < 0) {
            if (errno == EINTR) continue;
            std::cerr << "preflight-classify: write error: " << std::strerror(errno) << "\n";
            return false;
        }
        p += n;
        left -= static_cast<std::size_t>(n);
    }
    out.clear();
    return true;
}

unsigned worker_count() {
    if (const char* env = std::getenv("PREFLIGHT_THREADS")) {
        char* end = nullptr;
        unsigned long n = std::strtoul(env, &end, 10);
        if (end != env && *end == '\0' && n >= 1 && n <= 256) return static_cast<unsigned>(n);
    }
    return std::max(1u, std::thread::hardware_concurrency());
}

std::optional<Format> parse_format(std::string_view s) {
    if (s == "json") return Format::json;
    if (s == "tsv") return Format::tsv;
    if (s == "text") return Format::text;
    return std::nullopt;
}

std::function<std::optional<std::string>(const std::string&)> format_option(Format& out) {
    return [&out](const std::string& v) -> std::optional<std::string> {
        auto f = parse_format(v);
        if (!f) return "want json, text or tsv";
        out = *f;
        return std::nullopt;
    };
}

}  // namespace preflight
