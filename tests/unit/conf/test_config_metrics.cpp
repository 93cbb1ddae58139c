// MetricsListen: an address literal and a port; empty (the default) is off.
#include <catch2/catch.hpp>

#include <string>

#include "config.hpp"

using namespace preflight;

namespace {

std::string error_of(const std::string& text) {
    auto r = parse_config_text("/etc/preflight.conf", text);
    return r.errors.empty() ? std::string() : r.errors.front().to_string();
}

std::string listen_of(const std::string& text) {
    auto r = parse_config_text("/etc/preflight.conf", "EgressAddresses 192.0.2.10\n" + text);
    for (const auto& e : r.errors) UNSCOPED_INFO(e.to_string());
    REQUIRE(r.ok());
    return r.config->global().metrics_listen;
}

}  // namespace

TEST_CASE("MetricsListen: off by default, ip:port or [ipv6]:port", "[config][metrics]") {
    CHECK(default_global_settings().metrics_listen.empty());
    CHECK(listen_of("Mode enforce\n").empty());
    CHECK(listen_of("MetricsListen 127.0.0.1:9465\n") == "127.0.0.1:9465");
    CHECK(listen_of("MetricsListen [::1]:9465\n") == "[::1]:9465");
    CHECK(listen_of("MetricsListen \"\"\n").empty());
    CHECK(find_config_key("metricslisten")->type == KeyType::listen_address);
    CHECK(to_string(KeyType::listen_address) == "listen-address");

    CHECK(error_of("MetricsListen localhost:9465") ==
          "/etc/preflight.conf:1: MetricsListen: \"localhost:9465\" has no IP address before the port "
          "(an address literal: 127.0.0.1:9465)");
    CHECK(error_of("MetricsListen 9465") ==
          "/etc/preflight.conf:1: MetricsListen: \"9465\" needs an address and a port (127.0.0.1:9465)");
    CHECK(error_of("MetricsListen 127.0.0.1:0") ==
          "/etc/preflight.conf:1: MetricsListen: \"127.0.0.1:0\" has a bad port (1..65535)");
    CHECK(error_of("MetricsListen ::1:9465") ==
          "/etc/preflight.conf:1: MetricsListen: \"::1:9465\" has an IPv6 address without brackets ([::1]:9465)");
    CHECK(error_of("Domain example.org MetricsListen 127.0.0.1:9465").find("cannot be set per domain") !=
          std::string::npos);
}
