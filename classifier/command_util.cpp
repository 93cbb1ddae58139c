#include "command_util.hpp"

#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <iostream>

namespace preflight {

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

}  // namespace preflight
