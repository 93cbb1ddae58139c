// Every argument of the reply table filled in, for the tests that render every row.
#pragma once

#include <string>

#include "reply_table.hpp"

namespace preflight {

inline ReplyArgs full_reply_args(std::string reason) {
    ReplyArgs a;
    a.address = "user@example.org";
    a.domain = "example.org";
    a.reason = std::move(reason);
    a.size = "22020096";
    a.limit = "20971520";
    a.ip = "192.0.2.10";
    a.egress = "192.0.2.10, 192.0.2.11";
    a.spf_hint = "include:spf.relay.example";
    a.spf_result = "fail";
    a.spf_reason = "mechanism -all matched";
    a.selector = "pf1";
    a.dkim_result = "fail";
    a.dkim_reason = "body hash mismatch";
    a.name = "example.org/MX";
    a.unit = "recipients";
    a.window = "day";
    a.subject = "example.org";
    a.retry = "3 h 12 min";
    a.from_domain = "news.example.org";
    a.signers = "esp.example";
    a.alignment = "relaxed";
    a.problem = "List-Unsubscribe-Post";
    a.period = "Monthly";
    a.used = "50,000";
    a.renews = "2027-01-15 00:00 UTC";
    a.since = "2026-11-03";
    a.remote_mta = "mx.example.net";
    return a;
}

}  // namespace preflight
