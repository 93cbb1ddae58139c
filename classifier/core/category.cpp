#include "category.hpp"

#include <array>

namespace preflight {
namespace {

constexpr std::array<std::string_view, 5> kStatusNames = {"sent", "deferred", "bounce", "rejected", "expired"};
constexpr std::array<std::string_view, 3> kBounceNames = {"none", "soft", "hard"};
constexpr std::array<std::string_view, kCategoryCount> kCategoryNames = {
    "bad-configuration", "bad-connection",  "bad-domain",      "bad-mailbox",         "content-related",
    "inactive-mailbox",  "invalid-sender",  "message-expired", "no-answer-from-host", "other",
    "policy-related",    "protocol-errors", "quota-issues",    "relaying-issues",     "routing-errors",
    "spam-related",      "virus-related",   "success",
};

template <typename Enum, std::size_t N>
std::optional<Enum> lookup(const std::array<std::string_view, N>& names, std::string_view s) {
    for (std::size_t i = 0; i < N; ++i)
        if (names[i] == s) return static_cast<Enum>(i);
    return std::nullopt;
}

}  // namespace

std::string_view to_string(Status s) { return kStatusNames[static_cast<std::size_t>(s)]; }
std::string_view to_string(Bounce b) { return kBounceNames[static_cast<std::size_t>(b)]; }
std::string_view to_string(Category c) { return kCategoryNames[static_cast<std::size_t>(c)]; }

std::optional<Status> parse_status(std::string_view s) { return lookup<Status>(kStatusNames, s); }
std::optional<Bounce> parse_bounce(std::string_view s) { return lookup<Bounce>(kBounceNames, s); }
std::optional<Category> parse_category(std::string_view s) { return lookup<Category>(kCategoryNames, s); }

Bounce default_bounce(Category c) {
    switch (c) {
    case Category::bad_mailbox:
    case Category::bad_domain:
    case Category::inactive_mailbox: return Bounce::hard;
    case Category::success: return Bounce::none;
    default: return Bounce::soft;
    }
}

}  // namespace preflight
