// The test DNS server (tests/integration/testdns.py) as a process-wide fixture for the [dns],
// [spf] and [dkim] tests: started on first use on a free loopback port with a zone written at
// test time (including DKIM keys generated at test time with openssl: no private key is
// committed), stopped by PID at exit. Every wait is bounded.
#pragma once

#include <string>
#include <sys/types.h>

namespace preflight::testing {

struct TestKey {
    std::string private_pem;  // for signing in tests
    std::string public_b64;   // DER SubjectPublicKeyInfo, base64, no whitespace
};

class TestDns {
public:
    TestDns();
    ~TestDns();
    TestDns(const TestDns&) = delete;
    TestDns& operator=(const TestDns&) = delete;

    std::string nameserver() const;  // "127.0.0.1:PORT"
    int port() const { return port_; }
    // Queries the server has received for (name, TYPE), e.g. ("a.test", "A").
    int count(const std::string& name, const std::string& type) const;

    const TestKey& key2048() const { return key2048_; }  // published at sel1._domainkey.dkim.test
    const TestKey& key1024() const { return key1024_; }  // published at other._domainkey.dkim.test
    const TestKey& key512() const { return key512_; }    // published at small._domainkey.dkim.test

private:
    std::string dir_;
    pid_t pid_ = -1;
    int port_ = 0;
    TestKey key2048_, key1024_, key512_;
};

// The shared instance (started on first call). Throws std::runtime_error when it cannot start.
TestDns& test_dns();

}  // namespace preflight::testing
