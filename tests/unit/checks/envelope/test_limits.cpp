// Size and recipient limits.
#include <catch2/catch.hpp>

#include <cstdint>
#include <limits>

#include "limits_check.hpp"
#include "reply_table.hpp"

using namespace preflight;

// Every refusal ends with the line naming who refused (reply_table.hpp), joined by reply_text().
static std::string marked() { return " " + std::string(refusal_marker); }

namespace {
constexpr std::uint64_t MB20 = 20ull * 1024 * 1024;
}

TEST_CASE("limits: announced SIZE=", "[checks][limits]") {
    struct Row {
        std::optional<std::uint64_t> size;
        std::uint64_t max;
        bool accept;
    };
    const Row rows[] = {
        {std::nullopt, MB20, true},  // no SIZE=: decided at end of message
        {0, MB20, true},             // SIZE=0: size unknown (RFC 1870)
        {MB20, MB20, true},          // at the limit
        {MB20 + 1, MB20, false},
        {21ull * 1000 * 1000 * 1000, MB20, false},
        {std::numeric_limits<std::uint64_t>::max(), MB20, false},
        {std::numeric_limits<std::uint64_t>::max(), 0, true},  // 0: no limit
    };
    for (const Row& r : rows) {
        Verdict v = check_announced_size(r.size, r.max);
        CHECK(v.accepted() == r.accept);
        CHECK(v.check == "size");
        if (!r.accept) {
            CHECK(v.reply == ReplyId::size_announced_too_big);
            CHECK(v.args.size == std::to_string(*r.size));
            CHECK(missing_args(v).empty());
        }
    }
    Verdict v = check_announced_size(22020096, MB20);
    CHECK(reply_text(render(v)) ==
          "552 5.3.4 Message too large: 22020096 bytes, and this relay accepts at most 20971520 bytes; "
          "send a smaller message, e.g. share large attachments as a link" +
              marked());
}

TEST_CASE("limits: actual size, incrementally", "[checks][limits]") {
    // The milter calls this per chunk with the running total: the first chunk that crosses the
    // limit is refused.
    std::uint64_t total = 0;
    int refused_at = -1;
    for (int chunk = 0; chunk < 400 && refused_at < 0; ++chunk) {
        total += 65536;
        if (!check_message_size(total, MB20).accepted()) refused_at = chunk;
    }
    CHECK(refused_at == 320);  // 321 * 64 KiB > 20 MiB, 320 * 64 KiB == 20 MiB
    CHECK(check_message_size(MB20, MB20).accepted());
    Verdict v = check_message_size(MB20 + 1, MB20);
    REQUIRE(v.action == Verdict::Action::reject);
    CHECK(v.reply == ReplyId::size_too_big);
    SmtpReply r = render(v);
    CHECK(r.code == 552);
    CHECK(r.enhanced == "5.3.4");
    CHECK(missing_args(v).empty());
    CHECK(check_message_size(std::numeric_limits<std::uint64_t>::max(), 0).accepted());
}

TEST_CASE("limits: recipients", "[checks][limits]") {
    for (unsigned n = 1; n <= 50; ++n) CHECK(check_recipient(n, 50, RecipientLimitReply::tempfail).accepted());
    Verdict v = check_recipient(51, 50, RecipientLimitReply::tempfail);
    CHECK(v.action == Verdict::Action::tempfail);
    CHECK(v.reply == ReplyId::too_many_recipients_temp);
    CHECK(v.check == "recipients");
    CHECK(reply_text(render(v)) ==
          "452 4.5.3 Too many recipients: at most 50 per message; send the remaining recipients in another message" +
              marked());
    CHECK(check_recipient(1000, 50, RecipientLimitReply::tempfail).action == Verdict::Action::tempfail);

    Verdict p = check_recipient(51, 50, RecipientLimitReply::reject);
    CHECK(p.action == Verdict::Action::reject);
    SmtpReply r = render(p);
    CHECK(r.code == 550);
    CHECK(r.enhanced == "5.5.3");
    CHECK(check_recipient(4000000000u, 0, RecipientLimitReply::reject).accepted());  // 0: no limit
}

TEST_CASE("limits: SIZE= parameter parsing", "[checks][limits]") {
    CHECK(parse_size_param("SIZE=12345") == 12345u);
    CHECK(parse_size_param("size=0") == 0u);
    CHECK(parse_size_param("12345") == 12345u);
    CHECK(parse_size_param("SIZE=99999999999999999999999999") == std::numeric_limits<std::uint64_t>::max());
    CHECK(parse_size_param("SIZE=18446744073709551615") == std::numeric_limits<std::uint64_t>::max());
    CHECK(parse_size_param("SIZE=18446744073709551614") == std::numeric_limits<std::uint64_t>::max() - 1);
    CHECK_FALSE(parse_size_param("SIZE="));
    CHECK_FALSE(parse_size_param("SIZE=12a"));
    CHECK_FALSE(parse_size_param("SIZE=-1"));
    CHECK_FALSE(parse_size_param("BODY=8BITMIME"));
    CHECK_FALSE(parse_size_param(""));
}
