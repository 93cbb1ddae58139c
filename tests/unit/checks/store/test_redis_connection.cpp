// The Redis connection as a cluster runs it: redis:// and redis-sentinel:// locations, the
// credentials files (QuotaStorePasswordFile, SuppressionStorePasswordFile), and AUTH against a real redis-server that requires
// it. The AUTH cases are hidden ([.redis]) and run by milter.redis_store (tests/unit/with_redis.sh
// starts a Redis with an ACL user "preflight" limited to the keys pfq:* and pfs:* and a
// requirepass, and names both credentials files); run without it they fail.
#include <catch2/catch.hpp>
#include <arpa/inet.h>
#include <hiredis/hiredis.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>

#include "config.hpp"
#include "redis_connection.hpp"
#include "unique_fd.hpp"

using namespace preflight;

namespace {

struct CredentialsDir {
    std::string path;
    CredentialsDir() {
        std::string tmpl = (std::filesystem::temp_directory_path() / "preflight-redis-XXXXXX").string();
        REQUIRE(mkdtemp(tmpl.data()) != nullptr);
        path = tmpl;
    }
    ~CredentialsDir() {
        std::error_code ec;
        std::filesystem::remove_all(path, ec);
    }
    std::string file(const std::string& name, const std::string& text, mode_t mode = 0640) const {
        std::string p = path + "/" + name;
        std::ofstream(p, std::ios::binary) << text;
        REQUIRE(chmod(p.c_str(), mode) == 0);
        return p;
    }
};

std::string conf_error(const std::string& text) {
    auto r = parse_config_text("r.conf", text + "\nEgressAddresses 192.0.2.1\n");
    return r.errors.empty() ? std::string() : r.errors.front().to_string();
}

std::string why_not(const std::string& path) {
    std::string why;
    CHECK_FALSE(read_redis_credentials(path, &why));
    return why;
}

// The Redis of PREFLIGHT_TEST_REDIS with the credentials of the file the variable `file_var` names.
RedisEndpoint test_endpoint(const char* file_var) {
    const char* where = std::getenv("PREFLIGHT_TEST_REDIS");
    if (!where || !*where) FAIL("PREFLIGHT_TEST_REDIS is not set: run this case through tests/unit/with_redis.sh");
    auto spec = parse_quota_store(std::string("redis://") + where);
    REQUIRE(spec);
    RedisCredentials c;
    if (file_var) {
        const char* file = std::getenv(file_var);
        if (!file || !*file)
            FAIL(std::string(file_var) + " is not set: run this case through tests/unit/with_redis.sh");
        std::string why;
        auto read = read_redis_credentials(file, &why);
        INFO(why);
        REQUIRE(read);
        c = *read;
    }
    return redis_endpoint(*spec, c, {}, std::chrono::milliseconds(1000));
}

std::string error_of(RedisConnection& redis, const std::vector<std::string>& args) {
    try {
        redis.command(args);
    } catch (const RedisError& e) {
        return e.what();
    }
    return "no error";
}

}  // namespace

TEST_CASE("redis-sentinel:// names the sentinels and the master; no password on the conf line", "[redis_conf]") {
    auto s = parse_quota_store("redis-sentinel://10.0.0.1,10.0.0.2:5000,[::1]/mymaster/3");
    REQUIRE(s);
    CHECK(s->kind == QuotaStoreSpec::Kind::redis_sentinel);
    REQUIRE(s->sentinels.size() == 3);
    CHECK(s->sentinels[0] == RedisNode{"10.0.0.1", 26379});
    CHECK(s->sentinels[1] == RedisNode{"10.0.0.2", 5000});
    CHECK(s->sentinels[2] == RedisNode{"::1", 26379});
    CHECK(s->master_name == "mymaster");
    CHECK(s->db == 3);
    CHECK(s->to_string() == "redis-sentinel://10.0.0.1:26379,10.0.0.2:5000,[::1]:26379/mymaster/3");
    CHECK(parse_quota_store("redis-sentinel://s.example/m")->to_string() == "redis-sentinel://s.example:26379/m");

    CHECK(conf_error("QuotaStore redis-sentinel://127.0.0.1:26379") ==
          "r.conf:1: QuotaStore: \"redis-sentinel://127.0.0.1:26379\": give the master's name after the sentinels "
          "(redis-sentinel://HOST:PORT/MASTER)");
    CHECK(conf_error("QuotaStore redis-sentinel://127.0.0.1/bad name").find("is not a master name") !=
          std::string::npos);
    CHECK(conf_error("QuotaStore redis-sentinel://127.0.0.1,,x/m").find("is not a host") != std::string::npos);
    CHECK(conf_error("QuotaStore redis-sentinel://127.0.0.1:0/m").find("is not a port") != std::string::npos);
    CHECK(conf_error("QuotaStore redis-sentinel://127.0.0.1/m/16").find("0..15") != std::string::npos);
    // The password is never echoed back into the error (and so into logs or a terminal).
    std::string e = conf_error("QuotaStore redis://quota:s3cret@10.0.0.1:6379");
    CHECK(e == "r.conf:1: QuotaStore: a password does not belong on the conf line; put it in QuotaStorePasswordFile");
    CHECK(e.find("s3cret") == std::string::npos);
    CHECK(conf_error("QuotaStore redis-sentinel://:s3cret@10.0.0.1/m").find("QuotaStorePasswordFile") !=
          std::string::npos);
    CHECK(conf_error("QuotaStore rediss://10.0.0.1").find("stunnel (/usr/share/preflight/contrib/redis-tls/)") !=
          std::string::npos);
}

TEST_CASE("QuotaStorePasswordFile: USER:PASSWORD or PASSWORD, one line, not open to other users", "[redis_conf]") {
    CredentialsDir dir;
    auto user = read_redis_credentials(dir.file("user", "preflight:pa:ss word\n"));
    REQUIRE(user);
    CHECK(user->user == "preflight");
    CHECK(user->password == "pa:ss word");  // split at the first ':' only
    auto pass = read_redis_credentials(dir.file("pass", "just-a-password\r\n", 0600));
    REQUIRE(pass);
    CHECK(pass->user.empty());
    CHECK(pass->password == "just-a-password");
    CHECK(pass->file == dir.path + "/pass");

    std::string open = dir.file("open", "p\n", 0644);
    CHECK(why_not(open) == "\"" + open +
                               "\" is open to every user (mode 0644): it holds a password; chmod 0640 and "
                               "give it to group preflight");
    CHECK(why_not(dir.file("writable", "p\n", 0602)).find("mode 0602") != std::string::npos);
    CHECK(why_not(dir.file("empty", "\n")).find("is empty") != std::string::npos);
    CHECK(why_not(dir.file("two", "a:b\nc:d\n")).find("more than one line") != std::string::npos);
    CHECK(why_not(dir.file("nouser", ":pw")).find("empty user or password") != std::string::npos);
    CHECK(why_not(dir.file("nopass", "user:")).find("empty user or password") != std::string::npos);
    CHECK(why_not(dir.file("big", std::string(5000, 'x'))).find("too large") != std::string::npos);
    CHECK(why_not(dir.path + "/missing").find("cannot be read: No such file") != std::string::npos);
    CHECK(why_not(dir.path).find("is not a regular file") != std::string::npos);
    std::string fifo = dir.path + "/fifo";
    REQUIRE(mkfifo(fifo.c_str(), 0600) == 0);
    CHECK(why_not(fifo).find("is not a regular file") != std::string::npos);  // and no hang on open

    // Through the conf: FILE:LINE, the key, and what is wrong; -n gives the same.
    CHECK(conf_error("QuotaStore redis://127.0.0.1\nQuotaStorePasswordFile " + open) ==
          "r.conf:2: QuotaStorePasswordFile: \"" + open + "\" is open to every user (mode 0644): it holds a " +
              "password; chmod 0640 and give it to group preflight");
    CHECK(conf_error("QuotaStorePasswordFile etc/redis.pass").find("is not an absolute path") != std::string::npos);
    std::string good = dir.file("good", "preflight:pw\n");
    auto r = parse_config_text("r.conf",
                               "EgressAddresses 192.0.2.1\nQuotaStore redis://127.0.0.1\n"
                               "QuotaStorePasswordFile " +
                                   good + "\n");
    REQUIRE(r.ok());
    CHECK(r.config->global().quota_store_credentials.user == "preflight");
    CHECK(r.config->global().quota_store_sentinel_credentials.file.empty());
    CHECK(conf_error("QuotaStorePasswordFile " + good) ==
          "r.conf:1: QuotaStorePasswordFile: has no effect unless QuotaStore is redis:// or redis-sentinel://");
    CHECK(conf_error("QuotaStore redis://127.0.0.1\nQuotaStoreSentinelPasswordFile " + good) ==
          "r.conf:2: QuotaStoreSentinelPasswordFile: has no effect unless QuotaStore is redis-sentinel://");
}

TEST_CASE("SuppressionStorePasswordFile: the same files and checks as the quota store's", "[redis_conf]") {
    CredentialsDir dir;
    std::string good = dir.file("good", "preflight:pw\n");
    std::string sentinels = dir.file("sentinels", "sentinel-pw\n", 0600);
    auto r = parse_config_text("r.conf",
                               "EgressAddresses 192.0.2.1\nSuppressionStore redis-sentinel://127.0.0.1:26379/mymaster\n"
                               "SuppressionStorePasswordFile " +
                                   good + "\nSuppressionStoreSentinelPasswordFile " + sentinels + "\n");
    for (const auto& e : r.errors) UNSCOPED_INFO(e.to_string());
    REQUIRE(r.ok());
    const GlobalSettings& g = r.config->global();
    CHECK(g.suppression_store_credentials.user == "preflight");
    CHECK(g.suppression_store_credentials.password == "pw");
    CHECK(g.suppression_store_sentinel_credentials.password == "sentinel-pw");
    CHECK(g.quota_store_credentials.file.empty());  // the quota store's are its own

    std::string open = dir.file("open", "p\n", 0644);
    CHECK(conf_error("SuppressionStore redis://127.0.0.1\nSuppressionStorePasswordFile " + open) ==
          "r.conf:2: SuppressionStorePasswordFile: \"" + open + "\" is open to every user (mode 0644): it holds a " +
              "password; chmod 0640 and give it to group preflight");
    CHECK(conf_error("SuppressionStorePasswordFile " + good) ==
          "r.conf:1: SuppressionStorePasswordFile: has no effect unless SuppressionStore is redis:// or "
          "redis-sentinel://");
    CHECK(conf_error("SuppressionStore redis://127.0.0.1\nSuppressionStoreSentinelPasswordFile " + good) ==
          "r.conf:2: SuppressionStoreSentinelPasswordFile: has no effect unless SuppressionStore is "
          "redis-sentinel://");
    // A password in the URL: refused, not echoed, and the key to use instead named.
    std::string e = conf_error("SuppressionStore redis://list:s3cret@10.0.0.1:6379");
    CHECK(e ==
          "r.conf:1: SuppressionStore: a password does not belong on the conf line; put it in "
          "SuppressionStorePasswordFile");
    CHECK(e.find("s3cret") == std::string::npos);
}

TEST_CASE("Redis AUTH: the ACL user, requirepass, none, a wrong password", "[quota][.redis]") {
    SECTION("the ACL user of QuotaStorePasswordFile is who the connection is") {
        RedisConnection redis(test_endpoint("PREFLIGHT_TEST_REDIS_PASSWORD_FILE"));
        RedisReply who = redis.command({"ACL", "WHOAMI"});
        REQUIRE(who->type == REDIS_REPLY_STRING);
        CHECK(std::string(who->str, who->len) == "preflight");
        CHECK(redis.command({"SET", "pfq:auth-test", "1"})->type == REDIS_REPLY_STATUS);
        // The user's ACL is in force: keys outside pfq:* and pfs:* are refused.
        CHECK(error_of(redis, {"SET", "other-key", "1"}).find("NOPERM") != std::string::npos);
    }
    SECTION("a password alone authenticates the default user (requirepass)") {
        RedisConnection redis(test_endpoint("PREFLIGHT_TEST_REDIS_REQUIREPASS_FILE"));
        RedisReply who = redis.command({"ACL", "WHOAMI"});
        REQUIRE(who->type == REDIS_REPLY_STRING);
        CHECK(std::string(who->str, who->len) == "default");
    }
    SECTION("no credentials: every command is refused, nothing is counted") {
        RedisConnection redis(test_endpoint(nullptr));
        CHECK(error_of(redis, {"SET", "pfq:auth-test", "2"}).find("NOAUTH") != std::string::npos);
    }
    SECTION("a wrong password: an error naming the node and the user, never the password or the file") {
        RedisEndpoint e = test_endpoint("PREFLIGHT_TEST_REDIS_PASSWORD_FILE");
        e.credentials.password += "-wrong";
        const std::string wrong = e.credentials.password;
        RedisConnection redis(e);
        std::string err = error_of(redis, {"PING"});
        CHECK(err.find("Redis 127.0.0.1:") == 0);
        CHECK(err.find("AUTH as user preflight refused: WRONGPASS") != std::string::npos);
        CHECK(err.find(wrong) == std::string::npos);
        CHECK(err.find(e.credentials.file) == std::string::npos);
        // Within a second the next command fails at once, without connecting again.
        CHECK(error_of(redis, {"PING"}).find("unreachable") != std::string::npos);
    }
}

namespace {

// A TCP socket on loopback that takes connections (the kernel's backlog) and never answers.
struct SilentServer {
    UniqueFd fd;
    std::uint16_t port = 0;
    SilentServer() {
        fd.reset(socket(AF_INET, SOCK_STREAM, 0));
        REQUIRE(fd.get() >= 0);
        sockaddr_in a{};
        a.sin_family = AF_INET;
        a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        REQUIRE(bind(fd.get(), reinterpret_cast<sockaddr*>(&a), sizeof a) == 0);
        REQUIRE(listen(fd.get(), 8) == 0);
        socklen_t len = sizeof a;
        REQUIRE(getsockname(fd.get(), reinterpret_cast<sockaddr*>(&a), &len) == 0);
        port = ntohs(a.sin_port);
    }
};

}  // namespace

TEST_CASE("Redis connection: a node that never answers is a bounded error that says so", "[redis_conf]") {
    SilentServer silent;
    RedisEndpoint e;
    e.nodes = {RedisNode{"127.0.0.1", silent.port}};
    e.timeout = std::chrono::milliseconds(200);
    e.name = "redis://127.0.0.1:" + std::to_string(silent.port);
    RedisConnection redis(e);
    std::string err = error_of(redis, {"PING"});
    CHECK(err == e.name + ": no reply within 200 ms");
}

TEST_CASE("Redis connection: Sentinel mode with no sentinel answering names each one, within the timeout",
          "[redis_conf]") {
    SilentServer silent;
    auto spec =
        parse_quota_store("redis-sentinel://127.0.0.1:1,127.0.0.1:" + std::to_string(silent.port) + "/mymaster");
    REQUIRE(spec);
    RedisConnection redis(redis_endpoint(*spec, {}, {}, std::chrono::milliseconds(300)));
    CHECK(redis.sentinel_mode());
    auto t0 = std::chrono::steady_clock::now();
    std::string err = error_of(redis, {"PING"});
    // A bound that only catches a hang (the timeout is 300 ms), not a speed assert.
    CHECK(std::chrono::steady_clock::now() - t0 < std::chrono::seconds(10));
    CHECK(err.find("sentinel 127.0.0.1:1: Connection refused") != std::string::npos);
    CHECK(err.find("sentinel 127.0.0.1:" + std::to_string(silent.port)) != std::string::npos);
    // Within a second the next command fails at once.
    CHECK(error_of(redis, {"PING"}).find("unreachable") != std::string::npos);
}
