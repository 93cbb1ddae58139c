#include "test_dns_server.hpp"

#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <stdexcept>
#include <thread>
#include <vector>

#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

extern char** environ;

namespace preflight::testing {

namespace {

namespace fs = std::filesystem;

std::string slurp(const std::string& path) {
    std::ifstream in(path);
    std::stringstream ss;
    ss << in.rdbuf();
    return ss.str();
}

// A key pair made at test time; openssl is part of the build environment (libssl-dev).
TestKey make_key(const std::string& dir, const std::string& name, int bits) {
    const std::string priv = dir + "/" + name + ".pem", pub = dir + "/" + name + ".pub";
    const std::string cmd = "openssl genrsa -out '" + priv + "' " + std::to_string(bits) +
                            " 2>/dev/null && openssl pkey -in '" + priv + "' -pubout -out '" + pub + "' 2>/dev/null";
    if (std::system(cmd.c_str()) != 0) throw std::runtime_error("openssl failed: " + cmd);
    TestKey k;
    k.private_pem = slurp(priv);
    std::istringstream lines(slurp(pub));
    for (std::string line; std::getline(lines, line);)
        if (line.rfind("-----", 0) != 0) k.public_b64 += line;
    if (k.private_pem.empty() || k.public_b64.empty()) throw std::runtime_error("no key in " + dir);
    return k;
}

// TXT strings are at most 255 octets: split long record text into quoted 200-octet pieces.
std::string txt_strings(const std::string& s) {
    std::string out;
    for (std::size_t i = 0; i < s.size(); i += 200) out.append("\"").append(s, i, 200).append("\" ");
    return out;
}

std::string zone_text(const TestKey& k2048, const TestKey& k1024, const TestKey& k512) {
    std::string big(1000, 'b'), huge(3000, 'h');
    std::string z = R"($ORIGIN test.
$TTL 300
@                    IN SOA ns.test. hostmaster.test. 1 3600 600 86400 60
@                    IN NS  ns.test.
ns                   IN A   127.0.0.1
; resolver
a.test.              IN A    192.0.2.1
a.test.              IN AAAA 2001:db8::1
a.test.              IN MX   10 MX.A.test.
a.test.              IN TXT  "hello world"
multi.test.          IN TXT  "part one " "part two"
nullmx.test.         IN MX   0 .
cname.test.          IN CNAME a.test.
short.test.      1   IN A    192.0.2.2
delay.test.          IN A    192.0.2.3
tc.test.             IN A    192.0.2.4
wrongid.test.        IN A    192.0.2.5
wrongq.test.         IN A    192.0.2.6
garbage.test.        IN A    192.0.2.7
neg.test.            IN SOA  ns.test. hostmaster.test. 1 3600 600 86400 1
; SPF
spf-pass.test.       IN TXT  "v=spf1 ip4:192.0.2.10 ip6:2001:db8::10 -all"
spf-pass.test.       IN TXT  "some-site-verification=1234"
spf-softfail.test.   IN TXT  "v=spf1 ip4:192.0.2.10 ~all"
spf-neutral.test.    IN TXT  "v=spf1 ?all"
spf-bare.test.       IN TXT  "v=spf1"
spf-none.test.       IN TXT  "some-site-verification=abcd"
spf-mx.test.         IN MX   10 mx.spf-mx.test.
spf-mx.test.         IN TXT  "v=spf1 mx -all"
mx.spf-mx.test.      IN A    192.0.2.30
spf-a.test.          IN A    192.0.2.31
spf-a.test.          IN TXT  "v=spf1 a -all"
spf-include.test.    IN TXT  "v=spf1 include:spf-pass.test -all"
spf-loop1.test.      IN TXT  "v=spf1 include:spf-loop2.test -all"
spf-loop2.test.      IN TXT  "v=spf1 include:spf-loop1.test -all"
spf-many.test.       IN TXT  "v=spf1 a:h1.test a:h2.test a:h3.test a:h4.test a:h5.test a:h6.test a:h7.test a:h8.test a:h9.test a:h10.test a:h11.test ip4:192.0.2.10 -all"
spf-ten.test.        IN TXT  "v=spf1 a:h1.test a:h2.test a:h3.test a:h4.test a:h5.test a:h6.test a:h7.test a:h8.test a:h9.test a:h10.test ip4:192.0.2.10 -all"
spf-deep.test.       IN TXT  "v=spf1 include:spf-deep1.test include:spf-deep2.test -all"
spf-deep1.test.      IN TXT  "v=spf1 a:h1.test a:h2.test a:h3.test a:h4.test a:h5.test ?all"
spf-deep2.test.      IN TXT  "v=spf1 a:h6.test a:h7.test a:h8.test a:h9.test a:h10.test ip4:192.0.2.10 -all"
spf-void.test.       IN TXT  "v=spf1 a:v1.test a:v2.test a:v3.test ip4:192.0.2.10 -all"
spf-void2.test.      IN TXT  "v=spf1 a:v1.test a:v2.test ip4:192.0.2.10 -all"
spf-temp.test.       IN TXT  "v=spf1 include:servfail.test -all"
spf-syntax.test.     IN TXT  "v=spf1 foo:bar -all"
spf-multi.test.      IN TXT  "v=spf1 -all"
spf-multi.test.      IN TXT  "v=spf1 +all"
spf-incnone.test.    IN TXT  "v=spf1 include:spf-none.test -all"
spf-nullmx.test.     IN MX   0 .
spf-nullmx.test.     IN TXT  "v=spf1 mx -all"
; an egress pool of 192.0.2.7 and 2001:db8::7 (SpfEgressMatch): each record authorizes one
spf-pool4.test.      IN TXT  "v=spf1 ip4:192.0.2.7 -all"
spf-pool6.test.      IN TXT  "v=spf1 ip6:2001:db8::/64 ~all"
spf-poolboth.test.   IN TXT  "v=spf1 ip4:192.0.2.7 ip6:2001:db8::7 -all"
spf-pooltemp.test.   IN TXT  "v=spf1 ip4:192.0.2.7 include:servfail.test -all"
h1.test.             IN A    192.0.2.201
h2.test.             IN A    192.0.2.202
h3.test.             IN A    192.0.2.203
h4.test.             IN A    192.0.2.204
h5.test.             IN A    192.0.2.205
h6.test.             IN A    192.0.2.206
h7.test.             IN A    192.0.2.207
h8.test.             IN A    192.0.2.208
h9.test.             IN A    192.0.2.209
h10.test.            IN A    192.0.2.210
h11.test.            IN A    192.0.2.211
; DKIM
dkim.test.           IN A    192.0.2.40
bad._domainkey.dkim.test.     IN TXT "v=DKIM1; k=rsa; p=!!not*base64"
junk._domainkey.dkim.test.    IN TXT "hello world"
revoked._domainkey.dkim.test. IN TXT "v=DKIM1; p="
)";
    z += "big.test. IN TXT " + txt_strings(big) + "\n";
    z += "huge.test. IN TXT " + txt_strings(huge) + "\n";
    z += "sel1._domainkey.dkim.test. IN TXT " + txt_strings("v=DKIM1; k=rsa; p=" + k2048.public_b64) + "\n";
    z += "other._domainkey.dkim.test. IN TXT " + txt_strings("v=DKIM1; k=rsa; p=" + k1024.public_b64) + "\n";
    z += "small._domainkey.dkim.test. IN TXT " + txt_strings("v=DKIM1; k=rsa; p=" + k512.public_b64) + "\n";
    return z;
}

bool alive(pid_t pid) {
    int status = 0;
    return waitpid(pid, &status, WNOHANG) == 0;
}

}  // namespace

TestDns::TestDns() {
    std::string tmpl = (fs::temp_directory_path() / "preflight-testdns-XXXXXX").string();
    std::vector<char> buf(tmpl.begin(), tmpl.end());
    buf.push_back('\0');
    if (!mkdtemp(buf.data())) throw std::runtime_error("mkdtemp failed");
    dir_ = buf.data();

    key2048_ = make_key(dir_, "k2048", 2048);
    key1024_ = make_key(dir_, "k1024", 1024);
    key512_ = make_key(dir_, "k512", 512);
    std::ofstream(dir_ + "/test.zone") << zone_text(key2048_, key1024_, key512_);

    const char* py_env = std::getenv("PREFLIGHT_PYTHON");
    const std::string python = py_env && *py_env ? py_env : "/usr/bin/python3";
    const std::string script = std::string(PREFLIGHT_SOURCE_DIR) + "/tests/integration/testdns.py";
    const std::string port_file = dir_ + "/port";
    std::vector<std::string> args = {python,          script,
                                     "--zone",        dir_ + "/test.zone",
                                     "--port",        "0",
                                     "--port-file",   port_file,
                                     "--pid-file",    dir_ + "/pid",
                                     "--stats-file",  dir_ + "/stats",
                                     "--delay-ms",    "300",
                                     "--max-seconds", "900",
                                     "--parent-pid",  std::to_string(getpid())};
    std::vector<char*> argv;
    for (auto& a : args) argv.push_back(a.data());
    argv.push_back(nullptr);
    if (posix_spawn(&pid_, python.c_str(), nullptr, nullptr, argv.data(), environ) != 0)
        throw std::runtime_error("cannot start " + python + " " + script);

    // Ready when the port file appears (written after both sockets listen); at most 15 s.
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(15);
    while (std::chrono::steady_clock::now() < deadline) {
        const std::string p = slurp(port_file);
        if (!p.empty() && p.back() == '\n') {
            port_ = std::stoi(p);
            return;
        }
        if (!alive(pid_)) {
            pid_ = -1;
            throw std::runtime_error("testdns.py exited at start (python3-dnslib installed?)");
        }
        std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
    throw std::runtime_error("testdns.py did not become ready within 15 s");
}

TestDns::~TestDns() {
    if (pid_ > 0) {
        kill(pid_, SIGTERM);
        bool gone = false;
        for (int i = 0; i < 150 && !gone; ++i) {  // 3 s
            int status = 0;
            gone = waitpid(pid_, &status, WNOHANG) == pid_;
            if (!gone) std::this_thread::sleep_for(std::chrono::milliseconds(20));
        }
        if (!gone) {
            kill(pid_, SIGKILL);
            int status = 0;
            waitpid(pid_, &status, 0);
        }
    }
    std::error_code ec;
    if (!dir_.empty()) fs::remove_all(dir_, ec);
}

std::string TestDns::nameserver() const { return "127.0.0.1:" + std::to_string(port_); }

int TestDns::count(const std::string& name, const std::string& type) const {
    std::istringstream in(slurp(dir_ + "/stats"));
    std::string n, t;
    int c = 0;
    while (in >> n >> t >> c)
        if (n == name && t == type) return c;
    return 0;
}

TestDns& test_dns() {
    static TestDns instance;
    return instance;
}

}  // namespace preflight::testing
