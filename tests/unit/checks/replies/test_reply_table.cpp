// The reply table: every row consistent, every reply rendered safely, modes mapped as documented.
#include <catch2/catch.hpp>

#include <set>
#include <string>

#include "full_reply_args.hpp"
#include "reply_table.hpp"
#include "verdict.hpp"

using namespace preflight;

// Every refusal ends with the line naming who refused (reply_table.hpp), joined by reply_text().
static std::string marked() { return " " + std::string(refusal_marker); }

namespace {

ReplyArgs full_args() { return full_reply_args("a reason"); }

ReplyArgs args_with_each(const std::string& value) {
    ReplyArgs a;
    for (std::string* f :
         {&a.address,  &a.domain,     &a.reason,     &a.size,     &a.limit,       &a.ip,          &a.egress,
          &a.spf_hint, &a.spf_result, &a.spf_reason, &a.selector, &a.dkim_result, &a.dkim_reason, &a.name,
          &a.unit,     &a.window,     &a.subject,    &a.retry,    &a.from_domain, &a.signers,     &a.alignment,
          &a.problem,  &a.since,      &a.remote_mta, &a.period,   &a.used,        &a.renews})
        *f = value;
    for (std::string* f : {&a.period, &a.used, &a.renews}) *f = value;
    return a;
}

Verdict verdict_for(ReplyId id, ReplyArgs a, Verdict::Action act = Verdict::Action::reject) {
    const ReplyRow& row = reply_row(id);
    if (id == ReplyId::none) return Verdict::accept("test");
    if (act == Verdict::Action::tempfail || row.code < 500) return Verdict::tempfail("test", id, std::move(a));
    return Verdict::reject("test", id, std::move(a));
}

void require_safe(const SmtpReply& r) {
    REQUIRE(!r.lines.empty());
    REQUIRE(r.lines.size() <= max_reply_lines);
    for (const std::string& l : r.lines) {
        REQUIRE(!l.empty());
        REQUIRE(l.size() <= 980);  // libmilter's limit, after '%' doubling
        std::size_t plain = 0;
        for (std::size_t i = 0; i < l.size(); ++i) {
            unsigned char c = static_cast<unsigned char>(l[i]);
            REQUIRE(c >= 0x20);
            REQUIRE(c < 0x7f);
            if (c == '%') {  // every '%' doubled
                REQUIRE(i + 1 < l.size());
                REQUIRE(l[i + 1] == '%');
                ++i;
            }
            ++plain;
        }
        REQUIRE(plain <= max_line_text);
        // No placeholder left unfilled (no template text has literal braces).
        REQUIRE(l.find('{') == std::string::npos);
        REQUIRE(l.find('}') == std::string::npos);
    }
}

}  // namespace

TEST_CASE("reply table: one row per ReplyId, codes consistent", "[checks][reply]") {
    auto table = reply_table();
    REQUIRE(table.size() == reply_id_count);
    std::set<std::string_view> names;
    for (std::size_t i = 0; i < table.size(); ++i) {
        const ReplyRow& row = table[i];
        INFO(to_string(row.id));
        CHECK(static_cast<std::size_t>(row.id) == i);
        CHECK(names.insert(to_string(row.id)).second);
        // Basic and enhanced code of the same class (RFC 3463 3.1).
        REQUIRE(row.enhanced.size() >= 5);
        CHECK(row.enhanced[0] == static_cast<char>('0' + row.code / 100));
        CHECK(row.enhanced[1] == '.');
        // The 4xx twin: a 4xx code, or the code itself when the row is 2xx/4xx already.
        if (row.code >= 500) {
            // 550 -> 450, 552 -> 452 (RFC 1870), 553 -> 450 (no 453), 501 -> 451; too many
            // recipients -> 452 (RFC 5321 4.5.3.1.10).
            int want = row.id == ReplyId::too_many_recipients_perm || row.id == ReplyId::quota_exceeded_perm ? 452
                       : row.code == 552                                                                     ? 452
                       : row.code == 501                                                                     ? 451
                                                                                                             : 450;
            if (row.id == ReplyId::plan_exceeded_perm) want = 452;  // a plan is a quota: the client retries
            CHECK(row.temp_code == want);
        } else {
            CHECK(row.temp_code == row.code);
        }
        CHECK(template_problems(row.text).empty());
        CHECK(!row.text.empty());
    }
}

TEST_CASE("reply table: the codes the product promises", "[checks][reply]") {
    struct Row {
        ReplyId id;
        int code;
        std::string_view enhanced;
    };
    const Row rows[] = {
        {ReplyId::sender_syntax, 501, "5.1.7"},
        {ReplyId::recipient_syntax, 501, "5.1.3"},
        {ReplyId::address_needs_smtputf8, 553, "5.6.7"},
        {ReplyId::size_announced_too_big, 552, "5.3.4"},
        {ReplyId::size_too_big, 552, "5.3.4"},
        {ReplyId::too_many_recipients_temp, 452, "4.5.3"},
        {ReplyId::too_many_recipients_perm, 550, "5.5.3"},
        {ReplyId::sender_domain_unknown, 550, "5.1.8"},
        {ReplyId::sender_domain_null_mx, 550, "5.7.27"},
        {ReplyId::spf_required_failed, 550, "5.7.23"},
        {ReplyId::spf_record_invalid, 550, "5.7.24"},
        {ReplyId::dkim_required_failed, 550, "5.7.20"},
        {ReplyId::dkim_signature_invalid, 550, "5.7.20"},
        {ReplyId::dkim_key_invalid, 550, "5.7.20"},
        {ReplyId::auth_failed, 550, "5.7.26"},
        {ReplyId::auth_failed_all, 550, "5.7.26"},
        {ReplyId::dmarc_record_missing, 550, "5.7.26"},
        {ReplyId::dmarc_record_invalid, 550, "5.7.26"},
        {ReplyId::from_domain_unaligned, 550, "5.7.26"},
        {ReplyId::unsubscribe_missing, 550, "5.7.1"},
        {ReplyId::unsubscribe_unsigned, 550, "5.7.1"},
        {ReplyId::header_invalid, 550, "5.6.0"},
        {ReplyId::dns_temp_failure, 451, "4.4.3"},
        {ReplyId::internal_temp_failure, 451, "4.3.0"},
    };
    for (const Row& r : rows) {
        INFO(to_string(r.id));
        SmtpReply rep = render(verdict_for(r.id, full_args()));
        CHECK(rep.code == r.code);
        CHECK(rep.enhanced == r.enhanced);
    }
    // UnknownDomainCode 450, as Postfix: the twin of 550 5.1.8.
    SmtpReply temp = render(Verdict::tempfail("sender-domain", ReplyId::sender_domain_unknown, full_args()));
    CHECK(temp.code == 450);
    CHECK(temp.enhanced == "4.1.8");
}

TEST_CASE("reply table: the quota reply, as the quota issue words it", "[checks][reply][quota]") {
    ReplyArgs a;
    a.limit = "10000";
    a.unit = "recipients";
    a.window = "day";
    a.subject = "example.org";
    a.retry = "3 h 12 min";
    SmtpReply r = render(Verdict::tempfail("quota", ReplyId::quota_exceeded_temp, a));
    CHECK(r.code == 452);
    CHECK(r.enhanced == "4.7.1");
    REQUIRE(r.lines.size() == 2);
    CHECK(r.lines[0].starts_with(
        "Sending quota of 10000 recipients per day for example.org reached; it resets in 3 h 12 min"));
    SmtpReply perm = render(Verdict::reject("quota", ReplyId::quota_exceeded_perm, a));
    CHECK(perm.code == 550);
    CHECK(perm.enhanced == "5.7.1");
    SmtpReply twin =
        render(apply_mode(Verdict::reject("quota", ReplyId::quota_exceeded_perm, a), CheckMode::tempfail, false));
    CHECK(twin.code == 452);
    CHECK(twin.enhanced == "4.7.1");
}

TEST_CASE("reply table: the issue's example text, exactly", "[checks][reply]") {
    ReplyArgs a;
    a.domain = "example.org";
    a.ip = "192.0.2.10";
    a.spf_hint = "include:spf.relay.example";
    a.selector = "pf1";
    SmtpReply r = render(Verdict::reject("auth", ReplyId::auth_failed, a));
    REQUIRE(r.lines.size() == 2);
    CHECK(reply_text(r) ==
          "550 5.7.26 example.org publishes no SPF record that allows 192.0.2.10 and its mail is not DKIM-signed; "
          "add include:spf.relay.example to its SPF record or publish the DKIM key at pf1._domainkey.example.org" +
              marked());

    // With the SPF detail: a second line.
    a.spf_result = "fail";
    a.spf_reason = "mechanism -all matched";
    r = render(Verdict::reject("auth", ReplyId::auth_failed, a));
    REQUIRE(r.lines.size() == 3);
    CHECK(r.lines[1] == "SPF result: fail (mechanism -all matched)");
    CHECK(r.lines[2] == refusal_marker);

    // A broken signature is not "not signed"; no selector: tell them to sign.
    a.dkim_reason = "body hash mismatch";
    a.selector.clear();
    r = render(Verdict::reject("auth", ReplyId::auth_failed, a));
    CHECK(r.lines[0].find("its DKIM signature does not verify (body hash mismatch)") != std::string::npos);
    CHECK(r.lines[0].find("sign its mail with a DKIM key published under example.org") != std::string::npos);
}

TEST_CASE("reply table: every reply renders safely with full, empty and hostile args", "[checks][reply]") {
    const std::string hostile = "a\r\n250 ok\0b%s%n\x01\x7f\xff\xc3\xa9{domain}" + std::string(1, '\0') + "%";
    const std::string huge(1 << 20, 'x');
    const std::string spaced = [] {
        std::string s;
        for (int i = 0; i < 20000; ++i) s += "word ";
        return s;
    }();
    for (const ReplyRow& row : reply_table()) {
        INFO(to_string(row.id));
        for (const ReplyArgs& args : {full_args(), ReplyArgs{}, args_with_each(hostile), args_with_each(huge),
                                      args_with_each(spaced), args_with_each("100%")}) {
            for (auto act : {Verdict::Action::reject, Verdict::Action::tempfail}) {
                Verdict v = verdict_for(row.id, args, act);
                SmtpReply r = render(v);
                require_safe(r);
                CHECK(r.code / 100 == r.enhanced[0] - '0');
                std::string text = reply_text(r);
                CHECK(text.find('\r') == std::string::npos);
                CHECK(text.find('\n') == std::string::npos);
                CHECK(text.find('\0') == std::string::npos);
                TagHeader h = tag_header(apply_mode(v, CheckMode::tag, false));
                CHECK(h.value.find('\r') == std::string::npos);
                CHECK(h.value.find('\0') == std::string::npos);
                for (std::size_t p = h.value.find('\n'); p != std::string::npos; p = h.value.find('\n', p + 1)) {
                    REQUIRE(p + 1 < h.value.size());
                    CHECK(h.value[p + 1] == '\t');  // folded: LF then whitespace
                }
                CHECK(h.value.size() <= max_header_value + max_header_value / 8 + 8);
            }
        }
        // Full args: nothing missing for the rows that use them.
        CHECK(missing_args(verdict_for(row.id, full_args())).empty());
    }
}

TEST_CASE("reply table: sanitising details", "[checks][reply]") {
    ReplyArgs a;
    a.address = "evil\r\n550 5.0.0 injected%s\0x";
    a.address.push_back('\0');
    a.reason = "r";
    SmtpReply r = render(Verdict::reject("envelope", ReplyId::sender_syntax, a));
    REQUIRE(r.lines.size() == 2);
    CHECK(r.lines[0] ==
          "Bad sender address <evil550 5.0.0 injected%%s>: r; fix the envelope sender (MAIL FROM) of this message");
    CHECK(
        reply_text(r) ==
        "501 5.1.7 Bad sender address <evil550 5.0.0 injected%s>: r; fix the envelope sender (MAIL FROM) of this message" +
            marked());

    // Non-ASCII shown as '?'; values capped with "...".
    a.address = "j\xc3\xb6rg@example.org";
    r = render(Verdict::reject("envelope", ReplyId::sender_syntax, a));
    CHECK(r.lines[0].find("<j??rg@example.org>") != std::string::npos);
    a.address = std::string(5000, 'a');
    r = render(Verdict::reject("envelope", ReplyId::sender_syntax, a));
    CHECK(reply_text(r).find(std::string(max_arg_length, 'a') + "...") != std::string::npos);
    CHECK(reply_text(r).find(std::string(max_arg_length + 1, 'a')) == std::string::npos);

    // A value cannot smuggle a placeholder: it is not expanded again.
    a.address = "{domain}";
    a.domain = "secret";
    r = render(Verdict::reject("envelope", ReplyId::sender_syntax, a));
    CHECK(reply_text(r).find("secret") == std::string::npos);
}

TEST_CASE("reply lines: wrapping and the 32-line cap", "[checks][reply]") {
    std::string many;
    for (int i = 0; i < 100; ++i) many += "line " + std::to_string(i) + "\n\n";
    auto lines = reply_lines(many);
    REQUIRE(lines.size() == max_reply_lines);
    CHECK(lines.front() == "line 0");
    CHECK(lines.back() == "line 31 ...");

    std::string one_word(1000, 'w');
    lines = reply_lines(one_word);
    REQUIRE(lines.size() == 3);
    CHECK(lines[0].size() == max_line_text);

    std::string words;
    for (int i = 0; i < 200; ++i) words += "abcdefghi ";
    lines = reply_lines(words);
    for (const auto& l : lines) {
        CHECK(l.size() <= max_line_text);
        CHECK(l.front() != ' ');
        CHECK(l.back() != ' ');
    }
    CHECK(reply_lines("").empty());
}

TEST_CASE("template problems are found", "[checks][reply]") {
    CHECK(template_problems("{nope}").size() == 1);
    CHECK(template_problems("{domain").size() == 1);
    CHECK(template_problems("domain}").size() == 1);
    CHECK(template_problems("{domain?a {bad}|b}").size() == 1);
    CHECK(template_problems("{domain?a|b {bad}}").size() == 1);  // the branch not taken is checked too
    CHECK(template_problems("{domain?{ip}|{selector}} {name}").empty());
}

TEST_CASE("apply_mode: every mode, with and without dry-run", "[checks][mode]") {
    using A = Verdict::Action;
    struct Row {
        A decided;
        CheckMode mode;
        bool dry_run;
        A action;
        A would;
        int code;  // what render() shows (the log, the tag header)
    };
    const Row rows[] = {
        {A::reject, CheckMode::reject, false, A::reject, A::reject, 550},
        {A::reject, CheckMode::tempfail, false, A::tempfail, A::tempfail, 450},
        {A::reject, CheckMode::tag, false, A::tag, A::tag, 550},
        {A::reject, CheckMode::off, false, A::accept, A::accept, 250},
        {A::reject, CheckMode::reject, true, A::accept, A::reject, 550},
        {A::reject, CheckMode::tempfail, true, A::accept, A::tempfail, 450},
        {A::reject, CheckMode::tag, true, A::accept, A::tag, 550},
        {A::reject, CheckMode::off, true, A::accept, A::accept, 250},
        {A::tempfail, CheckMode::reject, false, A::tempfail, A::tempfail, 450},
        {A::tempfail, CheckMode::tempfail, false, A::tempfail, A::tempfail, 450},
        {A::tempfail, CheckMode::tag, false, A::tag, A::tag, 450},
        {A::tempfail, CheckMode::off, false, A::accept, A::accept, 250},
        {A::tempfail, CheckMode::reject, true, A::accept, A::tempfail, 450},
        {A::tempfail, CheckMode::tag, true, A::accept, A::tag, 450},
    };
    for (const Row& r : rows) {
        INFO("decided=" << to_string(r.decided) << " mode=" << static_cast<int>(r.mode) << " dry_run=" << r.dry_run);
        Verdict v = r.decided == A::reject
                        ? Verdict::reject("sender-domain", ReplyId::sender_domain_unknown, full_args())
                        : Verdict::tempfail("sender-domain", ReplyId::sender_domain_unknown, full_args());
        Verdict m = apply_mode(v, r.mode, r.dry_run);
        CHECK(m.action == r.action);
        CHECK(m.would == r.would);
        CHECK(m.dry_run == (r.dry_run && r.mode != CheckMode::off));
        CHECK(render(m).code == r.code);
        CHECK(m.accepted() == (r.action == A::accept || r.action == A::tag));
        // Idempotent.
        Verdict twice = apply_mode(m, r.mode, r.dry_run);
        CHECK(twice.action == m.action);
        CHECK(twice.would == m.would);
    }
    // Accept verdicts are never changed by a mode.
    for (auto mode : {CheckMode::reject, CheckMode::tempfail, CheckMode::tag, CheckMode::off})
        for (bool dry : {false, true}) {
            Verdict m = apply_mode(Verdict::accept("size"), mode, dry);
            CHECK(m.action == A::accept);
            CHECK(m.reply == ReplyId::none);
            CHECK(render(m).code == 250);
        }
}

TEST_CASE("apply_mode tempfail: every 5xx reply has a 4xx twin with the same subject.detail", "[checks][mode]") {
    for (const ReplyRow& row : reply_table()) {
        if (row.code < 500) continue;
        INFO(to_string(row.id));
        SmtpReply r = render(apply_mode(Verdict::reject("x", row.id, full_args()), CheckMode::tempfail, false));
        CHECK(r.code / 100 == 4);
        CHECK(r.enhanced == "4" + std::string(row.enhanced.substr(1)));
    }
    SmtpReply r =
        render(apply_mode(Verdict::reject("auth", ReplyId::auth_failed, full_args()), CheckMode::tempfail, false));
    CHECK(r.code == 450);
    CHECK(r.enhanced == "4.7.26");
    r = render(apply_mode(Verdict::reject("size", ReplyId::size_too_big, full_args()), CheckMode::tempfail, false));
    CHECK(r.code == 452);
    CHECK(r.enhanced == "4.3.4");
    r = render(apply_mode(Verdict::reject("recipients", ReplyId::too_many_recipients_perm, full_args()),
                          CheckMode::tempfail, false));
    CHECK(r.code == 452);
    CHECK(r.enhanced == "4.5.3");
}

TEST_CASE("tag header: name from the check, value is the reply, folded", "[checks][mode]") {
    Verdict v = apply_mode(Verdict::reject(check_name::sender_domain, ReplyId::sender_domain_null_mx, full_args()),
                           CheckMode::tag, false);
    TagHeader h = tag_header(v);
    CHECK(h.name == "X-Preflight-Sender-Domain");
    std::string unfolded;
    for (std::size_t i = 0; i < h.value.size(); ++i) {
        if (h.value[i] == '\n' && i + 1 < h.value.size() && h.value[i + 1] == '\t') {
            unfolded += ' ';
            ++i;
        } else {
            unfolded += h.value[i];
        }
    }
    CHECK(unfolded ==
          "550 5.7.27 Sender address rejected: example.org publishes a null MX (RFC 7505) and accepts no mail, so "
          "replies and bounces could not be delivered; use a sender address at a domain that receives mail");
    std::size_t start = 0, first = h.name.size() + 2;
    while (true) {
        std::size_t nl = h.value.find('\n', start);
        std::size_t len = (nl == std::string::npos ? h.value.size() : nl) - start + first;
        CHECK(len <= 78);
        if (nl == std::string::npos) break;
        start = nl + 1;
        first = 0;
    }
    CHECK(tag_header(Verdict::accept("auth")).name == "X-Preflight-Auth");
    CHECK(tag_header(Verdict::accept("a b\r\n:c")).name == "X-Preflight-A-B-C");
    CHECK(tag_header(Verdict::accept("")).name == "X-Preflight-Check");
}

TEST_CASE("enum names", "[checks][mode]") {
    CHECK(to_string(ReplyId::auth_failed) == "auth_failed");
    CHECK(temp_enhanced("5.7.26") == "4.7.26");
}

TEST_CASE("reply table: which replies show their reason, and which leave it to the log", "[checks][reply]") {
    // The stores' errors name host, port and user: never in the reply, so the log carries them.
    CHECK_FALSE(reply_shows(ReplyId::quota_store_failure, "reason"));
    CHECK_FALSE(reply_shows(ReplyId::suppression_unavailable, "reason"));
    CHECK(reply_shows(ReplyId::recipient_suppressed, "reason"));     // {reason}
    CHECK(reply_shows(ReplyId::dns_temp_failure, "reason"));         // {reason? (...)}
    CHECK(reply_shows(ReplyId::dns_temp_failure, "name"));
    CHECK_FALSE(reply_shows(ReplyId::recipient_suppressed, "reaso"));  // a whole name, not a prefix
    CHECK_FALSE(reply_shows(ReplyId::none, "reason"));
}
