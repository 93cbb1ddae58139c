// The milter's services as the session benchmarks run them: the conf from text, DNS from the
// given resolver (a cache over ZoneResolver), one egress address, 127.0.0.1.
#pragma once

#include <benchmark/benchmark.h>

#include <string>

#include "config.hpp"
#include "message_session.hpp"

namespace preflight {

// Services for conf; without a config (and the benchmark marked skipped) when it does not parse.
inline MilterServices bench_services(benchmark::State& state, Resolver& resolver, const std::string& conf) {
    MilterServices services;
    auto parsed = parse_config_text("bench.conf", conf);
    if (!parsed.ok()) {
        state.SkipWithError("bad conf");
        return services;
    }
    services.config = parsed.config;
    services.resolver = &resolver;
    services.egress_ips = {"127.0.0.1"};
    return services;
}

}  // namespace preflight
