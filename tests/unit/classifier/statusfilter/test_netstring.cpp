#include <catch2/catch.hpp>

#include <string>

#include "netstring.hpp"

using preflight::append_netstring;
using preflight::Netstring;
using preflight::parse_netstring;
using S = Netstring::Status;

TEST_CASE("netstring: complete ones, with what follows left alone", "[netstring]") {
    Netstring n = parse_netstring("12:status 5.1.1,", 100);
    REQUIRE(n.status == S::complete);
    CHECK(n.payload == "status 5.1.1");
    CHECK(n.consumed == 16);

    n = parse_netstring("3:abc,5:de", 100);  // a second one, partial
    REQUIRE(n.status == S::complete);
    CHECK(n.payload == "abc");
    CHECK(n.consumed == 6);
    CHECK(parse_netstring(std::string_view("3:abc,5:de").substr(n.consumed), 100).status == S::incomplete);

    n = parse_netstring("0:,", 100);  // the empty string
    REQUIRE(n.status == S::complete);
    CHECK(n.payload.empty());
    CHECK(n.consumed == 3);

    n = parse_netstring(std::string_view("3:a\0b,", 6), 100);  // any bytes, NUL and ',' included
    REQUIRE(n.status == S::complete);
    CHECK(n.payload == std::string_view("a\0b", 3));
    CHECK(parse_netstring("3:,,,,", 100).payload == ",,,");
}

TEST_CASE("netstring: every prefix of a valid one is incomplete", "[netstring]") {
    const std::string full = "25:status 4.2.2 Mailbox full,";
    for (std::size_t i = 0; i < full.size(); ++i) {
        INFO("prefix length " << i);
        CHECK(parse_netstring(std::string_view(full).substr(0, i), 100).status == S::incomplete);
    }
    CHECK(parse_netstring(full, 100).status == S::complete);
}

TEST_CASE("netstring: over the limit is known from the digits alone", "[netstring]") {
    CHECK(parse_netstring("100:", 100).status == S::incomplete);  // exactly the limit: fine
    CHECK(parse_netstring("101:", 100).status == S::too_long);
    CHECK(parse_netstring("101", 100).status == S::too_long);                         // before the ':' arrives
    CHECK(parse_netstring("99999999999999999999999999", 100).status == S::too_long);  // no overflow
    CHECK(parse_netstring("18446744073709551617:", 1 << 20).status == S::too_long);
    std::string at_limit = "5:abcde,";
    CHECK(parse_netstring(at_limit, 5).status == S::complete);
    CHECK(parse_netstring(at_limit, 4).status == S::too_long);
}

TEST_CASE("netstring: garbage is malformed", "[netstring]") {
    CHECK(parse_netstring(":abc,", 100).status == S::malformed);  // no length
    CHECK(parse_netstring("abc", 100).status == S::malformed);
    CHECK(parse_netstring("GET / HTTP/1.0\r\n", 100).status == S::malformed);
    CHECK(parse_netstring("3x:abc,", 100).status == S::malformed);  // junk after the digits
    CHECK(parse_netstring("3:abcd", 100).status == S::malformed);   // no ',' after 3 bytes
    CHECK(parse_netstring("3:abc;", 100).status == S::malformed);
    CHECK(parse_netstring("03:abc,", 100).status == S::malformed);  // leading zero
    CHECK(parse_netstring("00:,", 100).status == S::malformed);
    CHECK(parse_netstring("-1:,", 100).status == S::malformed);
    CHECK(parse_netstring(" 3:abc,", 100).status == S::malformed);
}

TEST_CASE("netstring: the empty buffer is incomplete", "[netstring]") {
    CHECK(parse_netstring("", 100).status == S::incomplete);
    CHECK(parse_netstring("0", 100).status == S::incomplete);
    CHECK(parse_netstring("0:", 100).status == S::incomplete);
}

TEST_CASE("netstring: append_netstring round-trips", "[netstring]") {
    std::string out;
    append_netstring(out, "OK ", "5", ".1.1 user unknown");
    append_netstring(out, "NOTFOUND ");
    append_netstring(out, "");
    CHECK(out == "21:OK 5.1.1 user unknown,9:NOTFOUND ,0:,");
    std::string_view rest = out;
    std::vector<std::string> got;
    while (!rest.empty()) {
        Netstring n = parse_netstring(rest, 1000);
        REQUIRE(n.status == S::complete);
        got.emplace_back(n.payload);
        rest.remove_prefix(n.consumed);
    }
    CHECK(got == std::vector<std::string>{"OK 5.1.1 user unknown", "NOTFOUND ", ""});
}
