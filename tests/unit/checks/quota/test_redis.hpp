#pragma once
// The Redis that tests/unit/with_redis.sh starts for the hidden [.redis] cases: its address in
// PREFLIGHT_TEST_REDIS=HOST:PORT and, since that Redis requires authentication, the ACL user's
// credentials in the file PREFLIGHT_TEST_REDIS_PASSWORD_FILE names.
#include <catch2/catch.hpp>

#include <cstdlib>
#include <memory>
#include <string>

#include "config.hpp"
#include "quota.hpp"

namespace preflight::test {

inline RedisCredentials test_redis_credentials() {
    RedisCredentials credentials;
    if (const char* file = std::getenv("PREFLIGHT_TEST_REDIS_PASSWORD_FILE"); file && *file) {
        std::string why;
        auto c = read_redis_credentials(file, &why);
        INFO(why);
        REQUIRE(c);
        credentials = *c;
    }
    return credentials;
}

// The store on that Redis, or nullptr when PREFLIGHT_TEST_REDIS is not set.
inline std::unique_ptr<QuotaStore> test_redis() {
    const char* where = std::getenv("PREFLIGHT_TEST_REDIS");
    if (!where || !*where) return nullptr;
    auto spec = parse_quota_store(std::string("redis://") + where);
    REQUIRE(spec);
    return open_quota_store(*spec, std::chrono::milliseconds(1000), test_redis_credentials());
}

}  // namespace preflight::test
