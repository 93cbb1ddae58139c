// Size and recipient limits (see limits_check.hpp).
#include "limits_check.hpp"

#include <limits>
#include <string>

namespace preflight {

Verdict check_announced_size(std::optional<std::uint64_t> size_param, std::uint64_t max) {
    // No SIZE= (or SIZE=0, "unknown" per RFC 1870): decided later by check_message_size.
    if (!size_param || max == 0 || *size_param <= max) return Verdict::accept(check_name::size);
    ReplyArgs a;
    a.size = std::to_string(*size_param);
    a.limit = std::to_string(max);
    return Verdict::reject(check_name::size, ReplyId::size_announced_too_big, std::move(a));
}

Verdict check_message_size(std::uint64_t bytes_so_far, std::uint64_t max) {
    if (max == 0 || bytes_so_far <= max) return Verdict::accept(check_name::size);
    ReplyArgs a;
    a.size = std::to_string(bytes_so_far);
    a.limit = std::to_string(max);
    return Verdict::reject(check_name::size, ReplyId::size_too_big, std::move(a));
}

Verdict check_recipient(unsigned n_th_recipient, unsigned max, RecipientLimitReply reply) {
    if (max == 0 || n_th_recipient <= max) return Verdict::accept(check_name::recipients);
    ReplyArgs a;
    a.limit = std::to_string(max);
    return reply == RecipientLimitReply::tempfail
               ? Verdict::tempfail(check_name::recipients, ReplyId::too_many_recipients_temp, std::move(a))
               : Verdict::reject(check_name::recipients, ReplyId::too_many_recipients_perm, std::move(a));
}

std::optional<std::uint64_t> parse_size_param(std::string_view arg) {
    if (arg.size() >= 5) {
        std::string_view key = arg.substr(0, 5);
        bool is_size = true;
        for (std::size_t i = 0; i < 5; ++i) {
            char c = key[i];
            if (c >= 'a' && c <= 'z') c = static_cast<char>(c - 'a' + 'A');
            is_size = is_size && c == "SIZE="[i];
        }
        if (is_size) arg.remove_prefix(5);
    }
    if (arg.empty()) return std::nullopt;
    std::uint64_t v = 0;
    constexpr std::uint64_t top = std::numeric_limits<std::uint64_t>::max();
    for (char c : arg) {
        if (c < '0' || c > '9') return std::nullopt;
        unsigned d = static_cast<unsigned>(c - '0');
        v = (v > (top - d) / 10) ? top : v * 10 + d;  // saturate rather than wrap
    }
    return v;
}

}  // namespace preflight
