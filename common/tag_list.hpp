// Tag=value lists (RFC 6376 3.2), the grammar of DKIM-Signature headers, DKIM key records
// (RFC 6376 3.6.1) and DMARC records (RFC 7489 6.4): "name=value" items separated by ';',
// white space (folding included) around names and values ignored, empty items allowed.
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "ascii.hpp"

namespace preflight {

struct Tag {
    std::string name;  // lower case
    std::string_view value;
};

// The tags in their order. An item without '=' sets error (naming the item) and returns none.
inline std::vector<Tag> split_tags(std::string_view text, std::string& error) {
    std::vector<Tag> tags;
    std::size_t pos = 0;
    while (pos <= text.size()) {
        std::size_t semi = text.find(';', pos);
        if (semi == std::string_view::npos) semi = text.size();
        std::string_view item = ascii::trim(text.substr(pos, semi - pos));
        pos = semi + 1;
        if (item.empty()) continue;
        std::size_t eq = item.find('=');
        if (eq == std::string_view::npos) {
            std::string why(1, '"');
            why += item.substr(0, 40);
            why += "\" is not a tag=value pair";
            error = std::move(why);
            return {};
        }
        tags.push_back({ascii::to_lower(ascii::trim(item.substr(0, eq))), ascii::trim(item.substr(eq + 1))});
    }
    return tags;
}

}  // namespace preflight
