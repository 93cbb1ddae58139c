#include "trace_header.hpp"

#include <openssl/evp.h>
#include <openssl/hmac.h>

#include <cerrno>
#include <cstring>
#include <fstream>

#include "ascii.hpp"

namespace preflight {

std::optional<std::string> read_trace_key(const std::string& path, std::string& error) {
    std::ifstream in(path, std::ios::binary);
    if (!in) {
        error = path + ": cannot be read: " + std::strerror(errno);
        return std::nullopt;
    }
    constexpr std::size_t kMaxKey = 4096;
    std::string key(kMaxKey + 1, '\0');
    in.read(key.data(), static_cast<std::streamsize>(key.size()));
    key.resize(static_cast<std::size_t>(in.gcount()));
    while (!key.empty() && ascii::is_space(key.back())) key.pop_back();
    if (key.size() > kMaxKey) {
        error = path + ": a trace key is at most 4096 bytes";
        return std::nullopt;
    }
    if (key.size() < 16) {
        error = path + ": a trace key needs at least 16 bytes (e.g. head -c 32 /dev/urandom | base64 > FILE)";
        return std::nullopt;
    }
    return key;
}

std::string trace_token(std::string_view key, std::string_view sender_domain, std::string_view recipient) {
    std::string data;
    for (char c : sender_domain) data += ascii::lower(c);
    data += '\n';
    data.append(recipient);
    unsigned char mac[EVP_MAX_MD_SIZE];
    unsigned int len = 0;
    HMAC(EVP_sha256(), key.data(), static_cast<int>(key.size()), reinterpret_cast<const unsigned char*>(data.data()),
         data.size(), mac, &len);
    static constexpr char kHex[] = "0123456789abcdef";
    std::string out;
    for (unsigned int i = 0; i < 16 && i < len; ++i) {
        out += kHex[mac[i] >> 4];
        out += kHex[mac[i] & 15];
    }
    return out;
}

std::optional<std::string> parse_trace_token(std::string_view value) {
    while (!value.empty() && ascii::is_space(value.front())) value.remove_prefix(1);
    while (!value.empty() && ascii::is_space(value.back())) value.remove_suffix(1);
    if (value.size() != 32) return std::nullopt;
    std::string out;
    for (char c : value) {
        char l = ascii::lower(c);
        if (!((l >= '0' && l <= '9') || (l >= 'a' && l <= 'f'))) return std::nullopt;
        out += l;
    }
    return out;
}

}  // namespace preflight
