// The tenants file: see tenants.hpp and man/preflight-tenants.5.
#include "tenants.hpp"

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <fstream>
#include <iterator>

#include "ascii.hpp"

namespace preflight {

struct TenantsBuilder {
    std::string file;
    const Settings& defaults;
    std::shared_ptr<TenantTable> table = std::make_shared<TenantTable>();
    std::vector<ConfigError> errors;

    TenantsBuilder(std::string name, const Settings& d, std::size_t lines) : file(std::move(name)), defaults(d) {
        table->file_ = file;
        table->tenants_.reserve(lines);
        table->index_.reserve(lines);
    }

    void error(int line, std::string key, std::string message) {
        errors.push_back({file, line, std::move(key), std::move(message)});
    }

    static std::string_view next_word(std::string_view& s) {
        while (!s.empty() && ascii::is_hspace(s.front())) s.remove_prefix(1);
        std::size_t n = 0;
        while (n < s.size() && !ascii::is_hspace(s[n])) ++n;
        std::string_view w = s.substr(0, n);
        s.remove_prefix(n);
        return w;
    }

    // At most 64 characters of what the file says, quoted, for a message.
    static std::string quoted(std::string_view s) {
        std::string out(1, '"');
        out.append(s.substr(0, 64));
        out += '"';
        return out;
    }

    static bool valid_name(std::string_view name) {
        if (name.empty() || name.size() > 256) return false;
        for (char c : name)
            if (static_cast<unsigned char>(c) <= 0x20 || static_cast<unsigned char>(c) >= 0x7f || c == '=' || c == '#')
                return false;
        return true;
    }

    void line(int lineno, std::string_view rest) {
        while (!rest.empty() && (rest.back() == '\r' || ascii::is_hspace(rest.back()))) rest.remove_suffix(1);
        std::string_view name = next_word(rest);
        if (name.empty() || name.front() == '#') return;
        if (!valid_name(name)) {
            std::string message = quoted(name);
            message +=
                " is not a tenant name (a SASL login or a domain: printable ASCII, no '=' or '#', at most 256 "
                "characters)";
            return error(lineno, "", std::move(message));
        }
        std::string tenant(name);
        if (auto it = table->index_.find(tenant); it != table->index_.end())
            return error(lineno, "",
                         "tenant " + tenant + ": duplicate (first at line " +
                             std::to_string(table->tenants_[it->second].line) + ")");
        Tenant t{tenant, defaults, lineno};
        std::vector<std::string> seen;
        bool ok = true;
        for (std::string_view word = next_word(rest); !word.empty(); word = next_word(rest)) {
            if (word.front() == '#') break;  // a comment to the end of the line
            const std::size_t eq = word.find('=');
            if (eq == std::string_view::npos || eq == 0) {
                std::string message = "tenant " + tenant + ": ";
                message += quoted(word);
                message += " is not KEY=VALUE (e.g. QuotaRecipients=50000/month)";
                error(lineno, "", std::move(message));
                ok = false;
                continue;
            }
            std::string why, key;
            if (!apply_policy_key(t.settings, word.substr(0, eq), word.substr(eq + 1), why, &key)) {
                error(lineno, key.empty() ? std::string(word.substr(0, eq)) : key, why + " (tenant " + tenant + ")");
                ok = false;
                continue;
            }
            for (const std::string& k : seen)
                if (k == key) {
                    error(lineno, key, "given twice for tenant " + tenant);
                    ok = false;
                }
            seen.push_back(key);
        }
        if (!ok) return;
        table->any_quota_ = table->any_quota_ || t.settings.has_quota();
        table->index_.emplace(tenant, table->tenants_.size());
        table->tenants_.push_back(std::move(t));
    }
};

const Tenant* TenantTable::find(std::string_view name) const {
    auto it = index_.find(name);
    return it == index_.end() ? nullptr : &tenants_[it->second];
}

const Tenant* TenantTable::find(std::string_view login, std::string_view sender_domain) const {
    if (!login.empty()) return find(login);
    if (sender_domain.empty()) return nullptr;
    if (sender_domain.back() == '.') sender_domain.remove_suffix(1);
    // Domains are written in lower case in the file; most arrive so, and need no copy.
    if (std::none_of(sender_domain.begin(), sender_domain.end(), [](char c) { return c >= 'A' && c <= 'Z'; }))
        return find(sender_domain);
    return find(ascii::to_lower(sender_domain));
}

TenantsResult parse_tenants_text(std::string_view name, std::string_view text, const Settings& defaults) {
    TenantsBuilder b(std::string(name), defaults,
                     static_cast<std::size_t>(std::count(text.begin(), text.end(), '\n')) + 1);
    int lineno = 0;
    std::size_t pos = 0;
    while (pos < text.size()) {
        const std::size_t nl = text.find('\n', pos);
        b.line(++lineno, text.substr(pos, nl == std::string_view::npos ? std::string_view::npos : nl - pos));
        if (nl == std::string_view::npos) break;
        pos = nl + 1;
    }
    if (!b.errors.empty()) return {nullptr, std::move(b.errors)};
    return {std::move(b.table), {}};
}

TenantsResult parse_tenants_file(const std::string& path, const Settings& defaults) {
    std::ifstream in(path, std::ios::binary);
    if (!in) return {nullptr, {{path, 0, "", std::string("cannot be read: ") + std::strerror(errno)}}};
    std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    if (in.bad()) return {nullptr, {{path, 0, "", std::string("cannot be read: ") + std::strerror(errno)}}};
    return parse_tenants_text(path, text, defaults);
}

}  // namespace preflight
