// preflight.conf: what an operator relies on — defaults, every value type with its bad
// values, the exact "FILE:LINE: KEY: why" messages that -n prints, Domain overrides, and that
// the man page and the shipped sample conf document exactly the keys of the table.
#include <catch2/catch.hpp>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <set>
#include <sstream>
#include <string>
#include <type_traits>
#include <utility>
#include <vector>

#include "config.hpp"

using namespace preflight;
using namespace std::chrono_literals;

namespace {

constexpr const char* kFile = "/etc/preflight.conf";

// Appended last so that the line numbers of text stay as written; EgressAddresses is required
// with the default AuthPolicy.
std::string with_egress(std::string_view text) { return std::string(text) + "\nEgressAddresses 192.0.2.10\n"; }

std::shared_ptr<const Config> load(std::string_view text) {
    auto r = parse_config_text(kFile, with_egress(text));
    for (const auto& e : r.errors) UNSCOPED_INFO(e.to_string());
    REQUIRE(r.ok());
    REQUIRE(r.errors.empty());
    return r.config;
}

std::vector<std::string> errors_of(std::string_view text, bool add_egress = true) {
    auto r = parse_config_text(kFile, add_egress ? with_egress(text) : std::string(text));
    std::vector<std::string> out;
    for (const auto& e : r.errors) out.push_back(e.to_string());
    CHECK(r.ok() == out.empty());
    return out;
}

// The single error a one-line conf produces.
std::string error_of(std::string_view line) {
    auto errs = errors_of(line);
    INFO(line);
    REQUIRE(errs.size() == 1);
    return errs[0];
}

std::string read_source(const std::string& rel) {
    std::ifstream in(std::string(PREFLIGHT_SOURCE_DIR) + "/" + rel);
    REQUIRE(in);
    std::stringstream ss;
    ss << in.rdbuf();
    return ss.str();
}

// A scratch directory for key files, removed at the end of the test.
struct TempDir {
    std::filesystem::path path;
    TempDir() {
        std::string tmpl = (std::filesystem::temp_directory_path() / "preflight-conf-XXXXXX").string();
        REQUIRE(mkdtemp(tmpl.data()) != nullptr);
        path = tmpl;
    }
    ~TempDir() {
        std::error_code ec;
        std::filesystem::remove_all(path, ec);
    }
    std::string write(const std::string& name, const std::string& content) const {
        auto p = path / name;
        std::ofstream(p) << content;
        return p.string();
    }
};

// A real RSA public key (openssl pkey -pubout), as PEM and as its DNS p= value.
const std::string kKeyB64 =
    "MIGfMA0GCSqGSIb3DQEBAQUAA4GNADCBiQKBgQCdR0DpN8+/E3Tg/spPPCySVT1E"
    "tvtrWsZkSqEklyzkIqYbhsqX+tePGIsUzsAkyh2AfkdBVvqIUyBc6q8mP9IWPVGe"
    "RprugMKhV4OTlhKxizAWt9iBB7xoT5PKgH+2ZfSVRQsqqjLERJUzJQPsH/lOulwr"
    "gkasgJ+Fxlkkx2Wh6QIDAQAB";
const std::string kKeyPem =
    "-----BEGIN PUBLIC KEY-----\n"
    "MIGfMA0GCSqGSIb3DQEBAQUAA4GNADCBiQKBgQCdR0DpN8+/E3Tg/spPPCySVT1E\n"
    "tvtrWsZkSqEklyzkIqYbhsqX+tePGIsUzsAkyh2AfkdBVvqIUyBc6q8mP9IWPVGe\n"
    "RprugMKhV4OTlhKxizAWt9iBB7xoT5PKgH+2ZfSVRQsqqjLERJUzJQPsH/lOulwr\n"
    "gkasgJ+Fxlkkx2Wh6QIDAQAB\n"
    "-----END PUBLIC KEY-----\n";

}  // namespace

// ---------------------------------------------------------------------------------------------
// Defaults

TEST_CASE("the table's defaults are the documented ones and equal Settings{}", "[config]") {
    CHECK(default_settings() == Settings{});
    CHECK(default_global_settings() == GlobalSettings{});

    auto c = load("");
    const auto& g = c->global();
    CHECK(g.socket.libmilter() == "unix:/run/preflight-milter/milter.sock");
    CHECK(g.user.empty());
    CHECK(g.group.empty());
    CHECK(g.pid_file.empty());
    CHECK(g.umask == 0117);
    CHECK(g.syslog);
    CHECK(g.log_facility == LogFacility::mail);
    CHECK(g.nameservers.empty());  // the system resolver
    CHECK(g.dns_timeout == 5s);
    CHECK(g.dns_cache_size == 10000);
    CHECK(g.on_dns_error == DnsErrorAction::tempfail);
    CHECK(g.apply_to == ApplyTo::all);
    CHECK(g.apply_to_networks.empty());
    CHECK(g.dkim_selectors.empty());
    CHECK(g.dkim_public_key.empty());

    const auto& s = c->defaults();
    CHECK(s.pattern.empty());
    CHECK(s.mode == RunMode::enforce);
    CHECK(s.envelope_syntax_mode == CheckMode::reject);
    CHECK(s.size_mode == CheckMode::reject);
    CHECK(s.sender_domain_mode == CheckMode::reject);
    CHECK(s.recipient_limit_mode == CheckMode::reject);
    CHECK(s.auth_mode == CheckMode::reject);
    CHECK(s.max_recipients == 50);
    CHECK(s.recipient_limit_reply == RecipientLimitReply::tempfail);
    CHECK(s.max_message_size == 20u * 1024 * 1024);
    CHECK(s.unknown_domain_code == 550);
    CHECK(s.auth_policy == AuthPolicy::spf_or_dkim);
    CHECK(c->overrides().empty());
    CHECK(&c->for_sender_domain("example.org") == &c->defaults());
}

TEST_CASE("the key table: unique names, help, the per-domain set, lookup", "[config]") {
    std::set<std::string> names;
    std::set<std::string> per_domain;
    for (const auto& k : config_keys()) {
        std::string lower;
        for (char ch : k.name) lower += static_cast<char>(std::tolower(static_cast<unsigned char>(ch)));
        CHECK(names.insert(lower).second);
        CHECK_FALSE(k.help.empty());
        CHECK((k.type == KeyType::enumeration) == !k.allowed.empty());
        if (k.per_domain) per_domain.insert(std::string(k.name));
    }
    // The keys the brief names, at least.
    for (const char* n : {"Socket",
                          "UserID",
                          "PidFile",
                          "Umask",
                          "Syslog",
                          "LogFacility",
                          "Nameservers",
                          "DnsTimeout",
                          "DnsCacheSize",
                          "Mode",
                          "EnvelopeSyntaxMode",
                          "SizeMode",
                          "SenderDomainMode",
                          "RecipientLimitMode",
                          "AuthMode",
                          "MaxRecipients",
                          "RecipientLimitReply",
                          "MaxMessageSize",
                          "UnknownDomainCode",
                          "AuthPolicy",
                          "EgressAddresses",
                          "DkimSelectors",
                          "DkimPublicKey",
                          "DkimPublicKeyFile",
                          "OnDnsError",
                          "ApplyTo",
                          "ApplyToNetworks"}) {
        INFO(n);
        CHECK(find_config_key(n) != nullptr);
    }
    // Limits, per-check modes, AuthPolicy, UnknownDomainCode, Mode (and the recipient reply).
    CHECK(per_domain == std::set<std::string>{"Mode",
                                              "EnvelopeSyntaxMode",
                                              "SizeMode",
                                              "SenderDomainMode",
                                              "RecipientLimitMode",
                                              "AuthMode",
                                              "MaxRecipients",
                                              "RecipientLimitReply",
                                              "MaxMessageSize",
                                              "UnknownDomainCode",
                                              "AuthPolicy",
                                              "SpfEgressMatch",
                                              "QuotaRecipients",
                                              "QuotaMessages",
                                              "QuotaPer",
                                              "QuotaMode",
                                              "QuotaCode",
                                              "RecipientDomainMode",
                                              "BillingDay",
                                              "DmarcMode",
                                              "AlignmentMode",
                                              "UnsubscribeMode",
                                              "HeaderSanityMode",
                                              "Bulk",
                                              "SuppressionMode",
                                              "SuppressionScope"});
    REQUIRE(find_config_key("maxrecipients") != nullptr);
    CHECK(find_config_key("maxrecipients")->name == "MaxRecipients");
    CHECK(find_config_key("Frobnicate") == nullptr);
    CHECK(bounds_text(*find_config_key("MaxRecipients")) == "1..100000");
    CHECK(bounds_text(*find_config_key("MaxMessageSize")) == "1K..100G");
    CHECK(bounds_text(*find_config_key("DnsTimeout")) == "100ms..60s");
    CHECK(bounds_text(*find_config_key("Umask")) == "0..0777");
    CHECK(bounds_text(*find_config_key("Socket")).empty());
}

// ---------------------------------------------------------------------------------------------
// Lines: keys, comments, quoting

TEST_CASE("keys are case-insensitive; blanks, tabs, CRLF and comments are handled", "[config]") {
    auto c = load(
        "# a comment\n"
        "\n"
        "   maxrecipients\t\t7   # trailing comment\r\n"
        "\tSIZEMODE off\r\n"
        "   # indented comment\n"
        "PidFile /run/a#b.pid\n"  // '#' not after a blank is part of the value
        "Nameservers 127.0.0.1 # 127.0.0.2\n");
    CHECK(c->defaults().max_recipients == 7);
    CHECK(c->defaults().size_mode == CheckMode::off);
    CHECK(c->global().pid_file == "/run/a#b.pid");
    CHECK(c->global().nameservers.size() == 1);
}

TEST_CASE("quoted values keep blanks and #, with \\\" and \\\\ escapes", "[config]") {
    auto c = load("PidFile \"/run/my dir/#1 \\\"x\\\" \\\\.pid\"   # comment\n");
    CHECK(c->global().pid_file == "/run/my dir/#1 \"x\" \\.pid");
    // A quoted empty value sets a path or list to none.
    CHECK(load("PidFile \"\"")->global().pid_file.empty());
    CHECK(load("Nameservers \"\"")->global().nameservers.empty());

    CHECK(error_of("PidFile \"/run/x.pid") == "/etc/preflight.conf:1: PidFile: no closing quote");
    CHECK(error_of("PidFile \"/run/x.pid\" extra") ==
          "/etc/preflight.conf:1: PidFile: unexpected text after the closing quote");
    // An empty quoted value is still a bad value for types that need one.
    CHECK(error_of("MaxRecipients \"\"") == "/etc/preflight.conf:1: MaxRecipients: \"\" is not an integer");
}

// ---------------------------------------------------------------------------------------------
// Error messages: the shapes -n prints

TEST_CASE("error messages: FILE:LINE: KEY: why", "[config]") {
    CHECK(error_of("MaxRecipients fifty") == "/etc/preflight.conf:1: MaxRecipients: \"fifty\" is not an integer");
    CHECK(error_of("Frobnicate yes") == "/etc/preflight.conf:1: Frobnicate: unknown key");
    CHECK(error_of("MaxRecipient 3") ==
          "/etc/preflight.conf:1: MaxRecipient: unknown key (did you mean MaxRecipients?)");
    CHECK(error_of("MaxRecipent 3") == "/etc/preflight.conf:1: MaxRecipent: unknown key (did you mean MaxRecipients?)");
    CHECK(error_of("MaxRxcxpxents 3") == "/etc/preflight.conf:1: MaxRxcxpxents: unknown key");
    // A key of 100 KB (a pasted blob) is an unknown key with no suggestion, not a long search.
    CHECK(error_of(std::string(100000, 'M') + " 3").ends_with(": unknown key"));
    CHECK(error_of("MaxMessageSize=20M") ==
          "/etc/preflight.conf:1: MaxMessageSize=20M: unknown key (write the value after a blank, not '=': "
          "MaxMessageSize 20M)");
    CHECK(error_of("MaxRecipients") == "/etc/preflight.conf:1: MaxRecipients: missing value");
    CHECK(error_of("MaxRecipients   # fifty") == "/etc/preflight.conf:1: MaxRecipients: missing value");
    CHECK(error_of("maxrecipients 0") == "/etc/preflight.conf:1: MaxRecipients: \"0\" is out of range (1..100000)");
    CHECK(error_of("SizeMode block") ==
          "/etc/preflight.conf:1: SizeMode: \"block\" is not one of reject, tempfail, tag, off");
    CHECK(errors_of("\n\nMaxRecipients 10\n#\nmaxrecipients 20\n") ==
          std::vector<std::string>{"/etc/preflight.conf:5: MaxRecipients: duplicate (first set at line 3)"});
}

TEST_CASE("every error of a file is reported, in line order", "[config]") {
    auto errs = errors_of(
        "MaxRecipients fifty\n"
        "Frobnicate 1\n"
        "SizeMode block\n"
        "MaxRecipients 20\n"
        "DnsTimeout 50ms\n"
        "Domain example.org Socket inet:127.0.0.1:1\n");
    CHECK(errs == std::vector<std::string>{
                      "/etc/preflight.conf:1: MaxRecipients: \"fifty\" is not an integer",
                      "/etc/preflight.conf:2: Frobnicate: unknown key",
                      "/etc/preflight.conf:3: SizeMode: \"block\" is not one of reject, tempfail, tag, off",
                      "/etc/preflight.conf:4: MaxRecipients: duplicate (first set at line 1)",
                      "/etc/preflight.conf:5: DnsTimeout: \"50ms\" is out of range (100ms..60s)",
                      "/etc/preflight.conf:6: Socket: cannot be set per domain (per-domain keys: Mode, "
                      "EnvelopeSyntaxMode, SizeMode, MaxMessageSize, SenderDomainMode, UnknownDomainCode, "
                      "RecipientLimitMode, MaxRecipients, RecipientLimitReply, AuthMode, AuthPolicy, "
                      "SpfEgressMatch, QuotaRecipients, QuotaMessages, QuotaPer, QuotaMode, QuotaCode, RecipientDomainMode, BillingDay, DmarcMode, "
                      "AlignmentMode, UnsubscribeMode, HeaderSanityMode, Bulk, SuppressionMode, SuppressionScope)",
                  });
}

TEST_CASE("values in messages are quoted, with control characters shown and long ones cut", "[config]") {
    CHECK(error_of("MaxRecipients \"a\tb\"") == "/etc/preflight.conf:1: MaxRecipients: \"a?b\" is not an integer");
    std::string longv(200, 'x');
    auto e = error_of("MaxRecipients " + longv);
    CHECK(e == "/etc/preflight.conf:1: MaxRecipients: \"" + std::string(80, 'x') + "...\" is not an integer");
}

TEST_CASE("parse_config_file: reads a file; an unreadable one is a line-0 error", "[config]") {
    TempDir dir;
    auto path = dir.write("p.conf", "EgressAddresses 192.0.2.10\nMaxRecipients 9\n");
    auto r = parse_config_file(path);
    REQUIRE(r.ok());
    CHECK(r.config->file() == path);
    CHECK(r.config->defaults().max_recipients == 9);

    auto bad = dir.write("bad.conf", "EgressAddresses 192.0.2.10\nMaxRecipients nine\n");
    auto rb = parse_config_file(bad);
    REQUIRE(rb.errors.size() == 1);
    CHECK(rb.errors[0].to_string() == bad + ":2: MaxRecipients: \"nine\" is not an integer");
    CHECK(rb.errors[0].file == bad);
    CHECK(rb.errors[0].line == 2);
    CHECK(rb.errors[0].key == "MaxRecipients");

    auto missing = (dir.path / "nope.conf").string();
    auto rm = parse_config_file(missing);
    CHECK_FALSE(rm.ok());
    REQUIRE(rm.errors.size() == 1);
    CHECK(rm.errors[0].to_string() == missing + ": cannot be read: No such file or directory");
}

// ---------------------------------------------------------------------------------------------
// Value types

TEST_CASE("boolean: yes/no/true/false/1/0 in any case", "[config]") {
    for (auto [text, want] : std::vector<std::pair<std::string, bool>>{{"yes", true},
                                                                       {"YES", true},
                                                                       {"true", true},
                                                                       {"True", true},
                                                                       {"1", true},
                                                                       {"no", false},
                                                                       {"No", false},
                                                                       {"false", false},
                                                                       {"FALSE", false},
                                                                       {"0", false}}) {
        INFO(text);
        CHECK(load("Syslog " + text)->global().syslog == want);
    }
    CHECK(error_of("Syslog maybe") ==
          "/etc/preflight.conf:1: Syslog: \"maybe\" is not a boolean (yes, no, true, false, 1, 0)");
    CHECK(error_of("Syslog on") ==
          "/etc/preflight.conf:1: Syslog: \"on\" is not a boolean (yes, no, true, false, 1, 0)");
}

TEST_CASE("integer: syntax and bounds", "[config]") {
    CHECK(load("MaxRecipients 1")->defaults().max_recipients == 1);
    CHECK(load("MaxRecipients 100000")->defaults().max_recipients == 100000);
    CHECK(load("DnsCacheSize 500000")->global().dns_cache_size == 500000);
    CHECK(error_of("MaxRecipients 100001") ==
          "/etc/preflight.conf:1: MaxRecipients: \"100001\" is out of range (1..100000)");
    CHECK(error_of("MaxRecipients -1") == "/etc/preflight.conf:1: MaxRecipients: \"-1\" is out of range (1..100000)");
    CHECK(error_of("MaxRecipients 99999999999999999999999") ==
          "/etc/preflight.conf:1: MaxRecipients: \"99999999999999999999999\" is out of range (1..100000)");
    for (const char* bad : {"+5", "5.0", "0x10", "5 0", "1e3"}) {
        INFO(bad);
        CHECK(error_of(std::string("MaxRecipients ") + bad) ==
              std::string("/etc/preflight.conf:1: MaxRecipients: \"") + bad + "\" is not an integer");
    }
    CHECK(error_of("DnsCacheSize 10") == "/etc/preflight.conf:1: DnsCacheSize: \"10\" is out of range (100..10000000)");
}

TEST_CASE("octal: Umask", "[config]") {
    CHECK(load("Umask 027")->global().umask == 027);
    CHECK(load("Umask 0")->global().umask == 0);
    CHECK(load("Umask 0777")->global().umask == 0777);
    CHECK(load("Umask 22")->global().umask == 022);  // always octal, as umask(1)
    CHECK(error_of("Umask 0999") == "/etc/preflight.conf:1: Umask: \"0999\" is not an octal number (e.g. 007, 027)");
    CHECK(error_of("Umask u=rwx") == "/etc/preflight.conf:1: Umask: \"u=rwx\" is not an octal number (e.g. 007, 027)");
    CHECK(error_of("Umask 1777") == "/etc/preflight.conf:1: Umask: \"1777\" is out of range (0..0777)");
}

TEST_CASE("size: bytes or K/M/G, binary, with bounds", "[config]") {
    CHECK(parse_size("20M") == 20u * 1024 * 1024);
    CHECK(parse_size("512K") == 512u * 1024);
    CHECK(parse_size("512k") == 512u * 1024);
    CHECK(parse_size("1G") == 1024u * 1024 * 1024);
    CHECK(parse_size("4096") == 4096u);
    CHECK_FALSE(parse_size("20MB"));
    CHECK_FALSE(parse_size("1.5M"));
    CHECK_FALSE(parse_size("M"));
    CHECK_FALSE(parse_size(""));
    CHECK_FALSE(parse_size("-1"));
    CHECK_FALSE(parse_size("99999999999999999999G"));

    CHECK(load("MaxMessageSize 20971520")->defaults().max_message_size == 20971520u);
    CHECK(load("MaxMessageSize 1g")->defaults().max_message_size == 1ull << 30);
    // A 21 MB (decimal) message is above the default.
    CHECK(21'000'000u > load("")->defaults().max_message_size);
    CHECK(error_of("MaxMessageSize 20MB") ==
          "/etc/preflight.conf:1: MaxMessageSize: \"20MB\" is not a size (bytes, or a number followed by K, M or G: "
          "512K, 20M, 1G)");
    CHECK(error_of("MaxMessageSize 512") ==
          "/etc/preflight.conf:1: MaxMessageSize: \"512\" is out of range (1K..100G)");
    CHECK(error_of("MaxMessageSize 0") == "/etc/preflight.conf:1: MaxMessageSize: \"0\" is out of range (1K..100G)");
    CHECK(error_of("MaxMessageSize 101G") ==
          "/etc/preflight.conf:1: MaxMessageSize: \"101G\" is out of range (1K..100G)");
    CHECK(error_of("MaxMessageSize 99999999999999999999G") ==
          "/etc/preflight.conf:1: MaxMessageSize: \"99999999999999999999G\" is out of range (1K..100G)");
}

TEST_CASE("duration: ms/s/m/h/d/w, a bare number in the caller's unit, bounds", "[config]") {
    CHECK(parse_duration("500ms", BareNumber::seconds) == 500ms);
    CHECK(parse_duration("5s", BareNumber::seconds) == 5s);
    CHECK(parse_duration("2m", BareNumber::seconds) == 2min);
    CHECK(parse_duration("1h", BareNumber::seconds) == 1h);
    CHECK(parse_duration("10", BareNumber::seconds) == 10s);
    CHECK(parse_duration("5S", BareNumber::seconds) == 5s);
    CHECK_FALSE(parse_duration("5 s", BareNumber::seconds));
    CHECK_FALSE(parse_duration("5sec", BareNumber::seconds));
    CHECK_FALSE(parse_duration("1.5s", BareNumber::seconds));
    CHECK_FALSE(parse_duration("s", BareNumber::seconds));
    CHECK_FALSE(parse_duration("-5s", BareNumber::seconds));

    CHECK(load("DnsTimeout 100ms")->global().dns_timeout == 100ms);
    CHECK(load("DnsTimeout 1m")->global().dns_timeout == 60s);
    CHECK(load("DnsTimeout 2")->global().dns_timeout == 2s);
    CHECK(error_of("DnsTimeout 99ms") == "/etc/preflight.conf:1: DnsTimeout: \"99ms\" is out of range (100ms..60s)");
    CHECK(error_of("DnsTimeout 2m") == "/etc/preflight.conf:1: DnsTimeout: \"2m\" is out of range (100ms..60s)");
    CHECK(
        error_of("DnsTimeout 5sec") ==
        "/etc/preflight.conf:1: DnsTimeout: \"5sec\" is not a duration (a number followed by ms, s, m, h, d or w: 500ms, "
        "5s, 2m)");
    // log --queue-lifetime counts bare numbers in days, as Postfix's maximal_queue_lifetime.
    CHECK(parse_duration("5", BareNumber::days) == 120h);
    CHECK(parse_duration("1d", BareNumber::seconds) == 24h);
    CHECK(parse_duration("2w", BareNumber::seconds) == 336h);
    CHECK_FALSE(parse_duration("", BareNumber::days));
}

TEST_CASE("enums: every value, any case; a bad one lists the allowed values", "[config]") {
    auto c = load(
        "Mode DRY-RUN\nEnvelopeSyntaxMode tempfail\nSizeMode tag\nSenderDomainMode off\n"
        "RecipientLimitMode Tempfail\nAuthMode tag\nRecipientLimitReply reject\nUnknownDomainCode 450\n"
        "AuthPolicy spf-and-dkim\nOnDnsError accept\nLogFacility local3\nApplyTo authenticated\n");
    const auto& s = c->defaults();
    CHECK(s.mode == RunMode::dry_run);
    CHECK(s.envelope_syntax_mode == CheckMode::tempfail);
    CHECK(s.size_mode == CheckMode::tag);
    CHECK(s.sender_domain_mode == CheckMode::off);
    CHECK(s.recipient_limit_mode == CheckMode::tempfail);
    CHECK(s.auth_mode == CheckMode::tag);
    CHECK(s.recipient_limit_reply == RecipientLimitReply::reject);
    CHECK(s.unknown_domain_code == 450);
    CHECK(s.auth_policy == AuthPolicy::spf_and_dkim);
    CHECK(c->global().on_dns_error == DnsErrorAction::accept);
    CHECK(c->global().log_facility == LogFacility::local3);
    CHECK(c->global().apply_to == ApplyTo::authenticated);

    for (auto [policy, want] : std::vector<std::pair<std::string, AuthPolicy>>{{"spf-or-dkim", AuthPolicy::spf_or_dkim},
                                                                               {"spf", AuthPolicy::spf},
                                                                               {"dkim", AuthPolicy::dkim},
                                                                               {"off", AuthPolicy::off}}) {
        CHECK(load("AuthPolicy " + policy)->defaults().auth_policy == want);
        CHECK(to_string(want) == policy);
    }
    CHECK(error_of("UnknownDomainCode 451") ==
          "/etc/preflight.conf:1: UnknownDomainCode: \"451\" is not one of 450, 550");
    CHECK(error_of("AuthPolicy spf-dkim") ==
          "/etc/preflight.conf:1: AuthPolicy: \"spf-dkim\" is not one of spf-or-dkim, spf-and-dkim, spf, dkim, off");
    CHECK(error_of("Mode dryrun") == "/etc/preflight.conf:1: Mode: \"dryrun\" is not one of enforce, dry-run");
    CHECK(error_of("LogFacility local8") ==
          "/etc/preflight.conf:1: LogFacility: \"local8\" is not one of mail, daemon, local0, local1, local2, "
          "local3, local4, local5, local6, local7");
    CHECK(to_syslog_facility(LogFacility::local3) == (19 << 3));  // LOG_LOCAL3
    CHECK(to_syslog_facility(LogFacility::mail) == (2 << 3));     // LOG_MAIL
}

TEST_CASE("socket: Postfix and libmilter spellings", "[config]") {
    struct Row {
        std::string text, libmilter, postfix;
    };
    for (const auto& r : std::vector<Row>{
             {"unix:/run/preflight-milter/milter.sock", "unix:/run/preflight-milter/milter.sock",
              "unix:/run/preflight-milter/milter.sock"},
             {"local:/var/run/pf.sock", "unix:/var/run/pf.sock", "unix:/var/run/pf.sock"},
             {"inet:127.0.0.1:8891", "inet:8891@127.0.0.1", "inet:127.0.0.1:8891"},
             {"inet:8891@127.0.0.1", "inet:8891@127.0.0.1", "inet:127.0.0.1:8891"},
             {"INET:localhost:8891", "inet:8891@localhost", "inet:localhost:8891"},
             {"inet:[::1]:8891", "inet6:8891@::1", "inet:[::1]:8891"},
             {"inet6:8891@::1", "inet6:8891@::1", "inet:[::1]:8891"},
             {"inet:8891@::1", "inet6:8891@::1", "inet:[::1]:8891"},
             {"inet:0.0.0.0:8891", "inet:8891@0.0.0.0", "inet:0.0.0.0:8891"},
         }) {
        INFO(r.text);
        auto c = load("Socket " + r.text);
        CHECK(c->global().socket.libmilter() == r.libmilter);
        CHECK(c->global().socket.postfix() == r.postfix);
    }
    auto s = parse_socket_address("inet:127.0.0.1:8891");
    REQUIRE(s);
    CHECK(s->kind == SocketAddress::Kind::inet);
    CHECK(s->host == "127.0.0.1");
    CHECK(s->port == 8891);

    std::string p = "/etc/preflight.conf:1: Socket: ";
    CHECK(error_of("Socket inet:8891") ==
          p + "\"inet:8891\" needs a host as well as a port (inet:127.0.0.1:8891); listening on every interface "
              "must be asked for (0.0.0.0)");
    CHECK(error_of("Socket unix:run/milter.sock") ==
          p + "\"unix:run/milter.sock\" needs an absolute path (unix:/run/preflight-milter/milter.sock)");
    CHECK(error_of("Socket inet:127.0.0.1:0") == p + "\"inet:127.0.0.1:0\" has a bad port (1..65535)");
    CHECK(error_of("Socket inet:127.0.0.1:70000") == p + "\"inet:127.0.0.1:70000\" has a bad port (1..65535)");
    CHECK(error_of("Socket inet:::1:8891") ==
          p + "\"inet:::1:8891\" has an IPv6 address without brackets (inet:[::1]:8891 or inet6:8891@::1)");
    CHECK(error_of("Socket inet6:8891@127.0.0.1") ==
          p + "\"inet6:8891@127.0.0.1\" has an IPv4 address after inet6 (use inet:)");
    CHECK(error_of("Socket inet:bad_host!:8891") ==
          p + "\"inet:bad_host!:8891\" has a bad host (an IP address or a host name)");
    CHECK(error_of("Socket /run/milter.sock") ==
          p + "\"/run/milter.sock\" is not a socket (unix:/path, local:/path, inet:HOST:PORT, inet:[IPV6]:PORT, "
              "inet:PORT@HOST or inet6:PORT@HOST)");
    CHECK(error_of("Socket tcp:8891") ==
          p + "\"tcp:8891\" is not a socket (unix:/path, local:/path, inet:HOST:PORT, inet:[IPV6]:PORT, "
              "inet:PORT@HOST or inet6:PORT@HOST)");
    CHECK(error_of("Socket unix:/" + std::string(120, 'a')).find("too long for a unix socket (at most 107 bytes)") !=
          std::string::npos);
}

TEST_CASE("user: user or user:group", "[config]") {
    auto c = load("UserID preflight");
    CHECK(c->global().user == "preflight");
    CHECK(c->global().group.empty());
    c = load("UserID preflight:postfix");
    CHECK(c->global().user == "preflight");
    CHECK(c->global().group == "postfix");
    for (const char* bad : {"a:b:c", ":mail", "preflight:", "-x"}) {
        INFO(bad);
        CHECK(error_of(std::string("UserID ") + bad) ==
              std::string("/etc/preflight.conf:1: UserID: \"") + bad + "\" is not user or user:group");
    }
}

TEST_CASE("path: absolute only", "[config]") {
    CHECK(load("PidFile /run/preflight-milter/pf.pid")->global().pid_file == "/run/preflight-milter/pf.pid");
    CHECK(error_of("PidFile run/pf.pid") == "/etc/preflight.conf:1: PidFile: \"run/pf.pid\" is not an absolute path");
}

TEST_CASE("address list: single addresses for EgressAddresses", "[config]") {
    auto r = parse_config_text(kFile, "EgressAddresses 192.0.2.10, 2001:db8::10 198.51.100.1,,\n");
    REQUIRE(r.ok());
    const auto& e = r.config->global().egress_addresses;
    REQUIRE(e.size() == 3);
    CHECK(e[0].to_string() == "192.0.2.10");
    CHECK_FALSE(e[0].v6);
    CHECK(e[1].to_string() == "2001:db8::10");
    CHECK(e[1].v6);
    CHECK(e[2].to_string() == "198.51.100.1");

    CHECK(errors_of("EgressAddresses 192.0.2.0/28", false) ==
          std::vector<std::string>{
              "/etc/preflight.conf:1: EgressAddresses: \"192.0.2.0/28\" is a network; give single addresses"});
    CHECK(
        errors_of("EgressAddresses relay.example.net", false) ==
        std::vector<std::string>{"/etc/preflight.conf:1: EgressAddresses: \"relay.example.net\" is not an IP address"});
    CHECK(errors_of("EgressAddresses 192.0.2.010", false) ==
          std::vector<std::string>{"/etc/preflight.conf:1: EgressAddresses: \"192.0.2.010\" is not an IP address"});
}

TEST_CASE("network list: CIDRs and addresses, matched by contains()", "[config]") {
    auto c = load("ApplyTo networks\nApplyToNetworks 192.0.2.0/24, 2001:db8::/32 198.51.100.7 10.0.0.0/8\n");
    const auto& n = c->global().apply_to_networks;
    REQUIRE(n.size() == 4);
    CHECK(n[0].to_string() == "192.0.2.0/24");
    CHECK(n[2].to_string() == "198.51.100.7");
    auto ip = [](const char* s) {
        auto a = parse_ip(s);
        REQUIRE(a);
        return *a;
    };
    CHECK(contains(n, ip("192.0.2.200")));
    CHECK_FALSE(contains(n, ip("192.0.3.1")));
    CHECK(contains(n, ip("2001:db8:ffff::1")));
    CHECK_FALSE(contains(n, ip("2001:db9::1")));
    CHECK(contains(n, ip("198.51.100.7")));
    CHECK_FALSE(contains(n, ip("198.51.100.8")));
    CHECK(contains(n, ip("10.255.0.1")));
    CHECK(contains({*parse_network("0.0.0.0/0")}, ip("203.0.113.9")));
    CHECK_FALSE(contains({*parse_network("0.0.0.0/0")}, ip("::1")));  // families never mix
    CHECK(parse_network("192.0.2.128/25")->contains(ip("192.0.2.129")));
    CHECK_FALSE(parse_network("192.0.2.128/25")->contains(ip("192.0.2.127")));

    std::string p = "/etc/preflight.conf:2: ApplyToNetworks: ";
    CHECK(errors_of("ApplyTo networks\nApplyToNetworks 192.0.2.1/24") ==
          std::vector<std::string>{p + "\"192.0.2.1/24\" has host bits set (did you mean 192.0.2.0/24?)"});
    CHECK(errors_of("ApplyTo networks\nApplyToNetworks 192.0.2.0/33") ==
          std::vector<std::string>{p + "\"192.0.2.0/33\" has a bad prefix length (0..32)"});
    CHECK(errors_of("ApplyTo networks\nApplyToNetworks 2001:db8::/129") ==
          std::vector<std::string>{p + "\"2001:db8::/129\" has a bad prefix length (0..128)"});
    CHECK(errors_of("ApplyTo networks\nApplyToNetworks mynetworks") ==
          std::vector<std::string>{p + "\"mynetworks\" is not an IP address or network (192.0.2.0/24, 2001:db8::/32)"});
}

TEST_CASE("client addresses from libmilter's sockaddr, IPv4-mapped included", "[config]") {
    sockaddr_in in{};
    in.sin_family = AF_INET;
    inet_pton(AF_INET, "192.0.2.9", &in.sin_addr);
    auto a = ip_from_sockaddr(reinterpret_cast<const sockaddr*>(&in));
    REQUIRE(a);
    CHECK(a->to_string() == "192.0.2.9");

    sockaddr_in6 in6{};
    in6.sin6_family = AF_INET6;
    inet_pton(AF_INET6, "::ffff:192.0.2.9", &in6.sin6_addr);
    auto mapped = ip_from_sockaddr(reinterpret_cast<const sockaddr*>(&in6));
    REQUIRE(mapped);
    CHECK_FALSE(mapped->v6);
    CHECK(parse_network("192.0.2.0/24")->contains(*mapped));

    inet_pton(AF_INET6, "2001:db8::9", &in6.sin6_addr);
    auto v6 = ip_from_sockaddr(reinterpret_cast<const sockaddr*>(&in6));
    REQUIRE(v6);
    CHECK(v6->v6);
    CHECK(v6->to_string() == "2001:db8::9");

    sockaddr unix_sa{};
    unix_sa.sa_family = AF_UNIX;
    CHECK_FALSE(ip_from_sockaddr(&unix_sa));
    CHECK_FALSE(ip_from_sockaddr(nullptr));
}

TEST_CASE("nameserver list: ip, ip:port, [ipv6]:port", "[config]") {
    auto c = load("Nameservers 127.0.0.1, 127.0.0.2:5353 [::1]:5300 2001:db8::53 [2001:db8::54]\n");
    const auto& ns = c->global().nameservers;
    // Canonical "ip:port", as LdnsResolver takes them.
    CHECK(ns == std::vector<std::string>{"127.0.0.1:53", "127.0.0.2:5353", "[::1]:5300", "[2001:db8::53]:53",
                                         "[2001:db8::54]:53"});
    CHECK(normalize_nameserver("2001:DB8:0::53") == "[2001:db8::53]:53");
    CHECK_FALSE(normalize_nameserver(""));

    std::string p = "/etc/preflight.conf:1: Nameservers: ";
    CHECK(error_of("Nameservers ns1.example.net") ==
          p + "\"ns1.example.net\" is not an IP address (nameservers are ip, ip:port or [ipv6]:port; no host names)");
    CHECK(error_of("Nameservers 127.0.0.1:0") == p + "\"127.0.0.1:0\" has a bad port (1..65535)");
    CHECK(error_of("Nameservers 127.0.0.1:") == p + "\"127.0.0.1:\" has a bad port (1..65535)");
    CHECK(error_of("Nameservers [::1") == p + "\"[::1\" has no closing ]");
    CHECK(error_of("Nameservers [::1]53") == p + "\"[::1]53\" is not ip, ip:port or [ipv6]:port");
    CHECK(error_of("Nameservers [127.0.0.1]:53") ==
          p + "\"[127.0.0.1]:53\" is not an IP address (nameservers are ip, ip:port or [ipv6]:port; no host names)");
}

TEST_CASE("string list: DkimSelectors, lower-cased, selectors only", "[config]") {
    auto c = load("DkimSelectors pf1, PF2  2024.pf_3\nDkimPublicKey " + kKeyB64);
    CHECK(c->global().dkim_selectors == std::vector<std::string>{"pf1", "pf2", "2024.pf_3"});
    std::string p = "/etc/preflight.conf:1: DkimSelectors: ";
    CHECK(errors_of("DkimSelectors pf1._domainkey.example.org\nDkimPublicKey " + kKeyB64) ==
          std::vector<std::string>{p + "\"pf1._domainkey.example.org\" is a DNS name; give the selector alone (pf1)"});
    CHECK(errors_of("DkimSelectors pf1 p@f\nDkimPublicKey " + kKeyB64) ==
          std::vector<std::string>{p +
                                   "\"p@f\" is not a DKIM selector (letters, digits, '-', '_', dot-separated labels)"});
}

TEST_CASE("base64 decoding", "[config]") {
    auto text = [](std::string_view b) {
        auto v = decode_base64(b);
        REQUIRE(v);
        return std::string(v->begin(), v->end());
    };
    CHECK(text("TWFu") == "Man");
    CHECK(text("TWE=") == "Ma");
    CHECK(text("TWE") == "Ma");
    CHECK(text("TQ==") == "M");
    CHECK(text("TW\n Fu\t") == "Man");
    CHECK(text("").empty());
    CHECK_FALSE(decode_base64("TWE=x"));
    CHECK_FALSE(decode_base64("T"));
    CHECK_FALSE(decode_base64("TW!u"));
    CHECK_FALSE(decode_base64("TQ="));   // wrong padding
    CHECK_FALSE(decode_base64("TR=="));  // stray bits in the tail
}

TEST_CASE("DKIM public key: inline base64, or a file in PEM, TXT record or base64 form", "[config]") {
    auto inline_key = load("DkimSelectors pf1\nDkimPublicKey " + kKeyB64);
    const auto& g = inline_key->global();
    CHECK(g.dkim_public_key == *decode_base64(kKeyB64));
    CHECK(g.dkim_public_key_base64 == kKeyB64);
    CHECK(g.dkim_public_key_file.empty());

    TempDir dir;
    // opendkim-genkey writes the record as zone file text split into character-strings.
    std::string record =
        "pf1._domainkey\tIN\tTXT\t( \"v=DKIM1; h=sha256; k=rsa; \"\n\t  \"p=" + kKeyB64.substr(0, 100) + "\"\n\t  \"" +
        kKeyB64.substr(100) + "\" )  ; ----- DKIM key pf1 for example.org\n";
    for (const auto& [name, content] :
         std::vector<std::pair<std::string, std::string>>{{"pf1.pem", kKeyPem},
                                                          {"pf1.txt", record},
                                                          {"pf1.b64", kKeyB64 + "\n"},
                                                          {"plain.txt", "v=DKIM1; k=rsa; p=" + kKeyB64}}) {
        INFO(name);
        auto path = dir.write(name, content);
        auto c = load("DkimSelectors pf1\nDkimPublicKeyFile " + path);
        CHECK(c->global().dkim_public_key == g.dkim_public_key);
        CHECK(c->global().dkim_public_key_base64 == kKeyB64);
        CHECK(c->global().dkim_public_key_file == path);
    }

    std::string p = "/etc/preflight.conf:2: DkimPublicKeyFile: \"";
    auto file_error = [&](const std::string& path) {
        auto errs = errors_of("DkimSelectors pf1\nDkimPublicKeyFile " + path);
        REQUIRE(errs.size() == 1);
        return errs[0];
    };
    auto priv = dir.write("priv.pem", "-----BEGIN PRIVATE KEY-----\nMIIC\n-----END PRIVATE KEY-----\n");
    CHECK(file_error(priv) == p + priv + "\" holds a private key; give the public key (openssl pkey -in KEY -pubout)");
    auto cert = dir.write("cert.pem", "-----BEGIN CERTIFICATE-----\nMIIC\n-----END CERTIFICATE-----\n");
    CHECK(file_error(cert) == p + cert + "\" holds a PEM block other than PUBLIC KEY");
    auto revoked = dir.write("revoked.txt", "v=DKIM1; k=rsa; p=");
    CHECK(file_error(revoked) == p + revoked + "\" holds an empty key (a revoked key has p= empty)");
    auto garbage = dir.write("garbage.txt", "this is not a key!");
    CHECK(file_error(garbage) == p + garbage + "\" is not base64");
    auto missing = (dir.path / "missing.pem").string();
    CHECK(file_error(missing) == p + missing + "\" cannot be read: No such file or directory");
    CHECK(file_error("keys/pf1.pem") == p + "keys/pf1.pem\" is not an absolute path");
    // Found while writing fuzz_conf: a FIFO blocked the parse (open and read wait for a writer).
    auto fifo = (dir.path / "fifo").string();
    REQUIRE(::mkfifo(fifo.c_str(), 0600) == 0);
    CHECK(file_error(fifo) == p + fifo + "\" is not a regular file");
    CHECK(file_error(dir.path.string()) == p + dir.path.string() + "\" is not a regular file");

    CHECK(errors_of("DkimSelectors pf1\nDkimPublicKey not*base64") ==
          std::vector<std::string>{"/etc/preflight.conf:2: DkimPublicKey: \"not*base64\" is not base64"});
    CHECK(errors_of("DkimSelectors pf1\nDkimPublicKey \"v=DKIM1; p=" + kKeyB64 + "\"") ==
          std::vector<std::string>{"/etc/preflight.conf:2: DkimPublicKey: \"v=DKIM1; p=" + kKeyB64.substr(0, 69) +
                                   "...\" is not base64 (give the p= value alone)"});
}

// ---------------------------------------------------------------------------------------------
// Checks across keys

TEST_CASE("DkimPublicKey and DkimPublicKeyFile exclude each other; selectors and key need each other", "[config]") {
    TempDir dir;
    auto path = dir.write("pf1.pem", kKeyPem);
    CHECK(errors_of("DkimSelectors pf1\nDkimPublicKey " + kKeyB64 + "\nDkimPublicKeyFile " + path) ==
          std::vector<std::string>{"/etc/preflight.conf:3: DkimPublicKeyFile: cannot be used together with "
                                   "DkimPublicKey (line 2); keep one"});
    CHECK(errors_of("DkimPublicKeyFile " + path + "\nDkimSelectors pf1\nDkimPublicKey " + kKeyB64) ==
          std::vector<std::string>{"/etc/preflight.conf:3: DkimPublicKey: cannot be used together with "
                                   "DkimPublicKeyFile (line 1); keep one"});
    CHECK(errors_of("DkimSelectors pf1") ==
          std::vector<std::string>{"/etc/preflight.conf:1: DkimSelectors: set, but neither DkimPublicKey nor "
                                   "DkimPublicKeyFile is (the key the selectors should publish)"});
    CHECK(errors_of("DkimPublicKeyFile " + path) ==
          std::vector<std::string>{"/etc/preflight.conf:1: DkimPublicKeyFile: set, but DkimSelectors is empty "
                                   "(where to look for the published key)"});
    // A key that failed to load is reported once, without a derived "selectors need a key".
    CHECK(errors_of("DkimSelectors pf1\nDkimPublicKeyFile /nonexistent/pf1.pem").size() == 1);
}

TEST_CASE("ApplyTo networks and ApplyToNetworks go together", "[config]") {
    CHECK(errors_of("ApplyTo networks") ==
          std::vector<std::string>{"/etc/preflight.conf:1: ApplyTo: networks needs ApplyToNetworks (the client "
                                   "networks whose mail is checked)"});
    CHECK(errors_of("ApplyToNetworks 192.0.2.0/24") ==
          std::vector<std::string>{"/etc/preflight.conf:1: ApplyToNetworks: has no effect unless ApplyTo is networks "
                                   "(ApplyTo is all)"});
    CHECK(errors_of("ApplyTo networks\nApplyToNetworks 192.0.2.999").size() == 1);  // no derived error
}

TEST_CASE("EgressAddresses is required whenever some AuthPolicy uses SPF", "[config]") {
    CHECK(errors_of("", false) ==
          std::vector<std::string>{"/etc/preflight.conf: EgressAddresses: not set, but AuthPolicy spf-or-dkim (the "
                                   "default) needs it: SPF is evaluated for the addresses the relay sends from; set "
                                   "it, or AuthPolicy dkim or off"});
    CHECK(errors_of("MaxRecipients 5\nAuthPolicy spf", false) ==
          std::vector<std::string>{"/etc/preflight.conf: EgressAddresses: not set, but AuthPolicy spf (line 2) needs "
                                   "it: SPF is evaluated for the addresses the relay sends from; set it, or "
                                   "AuthPolicy dkim or off"});
    CHECK(errors_of("EgressAddresses \"\"", false).size() == 1);
    CHECK(parse_config_text(kFile, "AuthPolicy dkim").ok());
    CHECK(parse_config_text(kFile, "AuthPolicy off").ok());
    CHECK(parse_config_text(kFile, "AuthMode off").ok());
    CHECK(errors_of("AuthPolicy off\nDomain example.org AuthPolicy spf-and-dkim", false) ==
          std::vector<std::string>{"/etc/preflight.conf:2: EgressAddresses: not set, but Domain example.org has "
                                   "AuthPolicy spf-and-dkim, which needs it: SPF is evaluated for the addresses the "
                                   "relay sends from"});
    // A bad AuthPolicy is one error, not two.
    CHECK(errors_of("AuthPolicy spff", false).size() == 1);
}

// ---------------------------------------------------------------------------------------------
// Domain overrides

TEST_CASE("Domain overrides: exact, wildcard, precedence, case and trailing dot", "[config]") {
    auto c = load(
        "MaxRecipients 40\n"
        "Domain Example.ORG. MaxRecipients 200\n"
        "Domain example.org SizeMode off\n"
        "Domain *.example.net AuthPolicy off\n"
        "Domain *.eu.example.net MaxRecipients 70\n"
        "Domain a.eu.example.net MaxRecipients 90\n"
        "Domain example.net MaxMessageSize 1M\n"
        "MaxMessageSize 30M\n");  // after the Domain lines: still the base of every override

    const Settings& org = c->for_sender_domain("example.org");
    CHECK(org.pattern == "example.org");
    CHECK(org.max_recipients == 200);
    CHECK(org.size_mode == CheckMode::off);
    CHECK(org.max_message_size == 30u << 20);
    CHECK(org.auth_policy == AuthPolicy::spf_or_dkim);
    CHECK(&c->for_sender_domain("EXAMPLE.org.") == &org);
    CHECK(&c->for_sender_domain("sub.example.org") == &c->defaults());  // exact means exact

    // *.parent: every subdomain, any depth, not the parent.
    const Settings& any = c->for_sender_domain("mail.example.net");
    CHECK(any.pattern == "*.example.net");
    CHECK(any.auth_policy == AuthPolicy::off);
    CHECK(any.max_recipients == 40);
    CHECK(&c->for_sender_domain("x.y.z.example.net") == &any);
    const Settings& parent = c->for_sender_domain("example.net");
    CHECK(parent.pattern == "example.net");
    CHECK(parent.auth_policy == AuthPolicy::spf_or_dkim);
    CHECK(parent.max_message_size == 1u << 20);

    // The most specific wildcard wins, and inherits what less specific ones set.
    const Settings& eu = c->for_sender_domain("b.eu.example.net");
    CHECK(eu.pattern == "*.eu.example.net");
    CHECK(eu.max_recipients == 70);
    CHECK(eu.auth_policy == AuthPolicy::off);
    // An exact line beats the wildcards but keeps what they set that it does not.
    const Settings& a = c->for_sender_domain("A.EU.example.net");
    CHECK(a.pattern == "a.eu.example.net");
    CHECK(a.max_recipients == 90);
    CHECK(a.auth_policy == AuthPolicy::off);
    CHECK(&c->for_sender_domain("eu.example.net") == &any);

    CHECK(&c->for_sender_domain("example.com") == &c->defaults());
    CHECK(&c->for_sender_domain("") == &c->defaults());
    CHECK(&c->for_sender_domain(".") == &c->defaults());
    CHECK(&c->for_sender_domain(std::string(300, 'a')) == &c->defaults());
    CHECK(&c->for_sender_domain("net") == &c->defaults());
    CHECK(c->defaults().max_recipients == 40);
    CHECK(c->defaults().max_message_size == 30u << 20);

    std::vector<std::string> patterns;
    for (const auto& s : c->overrides()) patterns.push_back(s.pattern);
    CHECK(patterns == std::vector<std::string>{"example.org", "*.example.net", "*.eu.example.net", "a.eu.example.net",
                                               "example.net"});
}

TEST_CASE("every per-domain key can be overridden", "[config]") {
    auto c = load(
        "Domain x.example Mode dry-run\nDomain x.example EnvelopeSyntaxMode tag\n"
        "Domain x.example SizeMode tempfail\nDomain x.example MaxMessageSize 512K\n"
        "Domain x.example SenderDomainMode off\nDomain x.example UnknownDomainCode 450\n"
        "Domain x.example RecipientLimitMode tag\nDomain x.example MaxRecipients 1000\n"
        "Domain x.example RecipientLimitReply reject\nDomain x.example AuthMode tempfail\n"
        "Domain x.example AuthPolicy dkim\n");
    const auto& s = c->for_sender_domain("x.example");
    CHECK(s.mode == RunMode::dry_run);
    CHECK(s.envelope_syntax_mode == CheckMode::tag);
    CHECK(s.size_mode == CheckMode::tempfail);
    CHECK(s.max_message_size == 512u * 1024);
    CHECK(s.sender_domain_mode == CheckMode::off);
    CHECK(s.unknown_domain_code == 450);
    CHECK(s.recipient_limit_mode == CheckMode::tag);
    CHECK(s.max_recipients == 1000);
    CHECK(s.recipient_limit_reply == RecipientLimitReply::reject);
    CHECK(s.auth_mode == CheckMode::tempfail);
    CHECK(s.auth_policy == AuthPolicy::dkim);
    CHECK(c->defaults() == Settings{});
}

TEST_CASE("SpfEgressMatch: all (default) or any, per domain; a bad value is FILE:LINE", "[config][spf]") {
    auto c = load(
        "SpfEgressMatch any\n"
        "Domain strict.example SpfEgressMatch all\n"
        "Domain *.lenient.example AuthPolicy spf\n");
    CHECK(default_settings().spf_egress_match == SpfEgressMatch::all);
    CHECK(c->defaults().spf_egress_match == SpfEgressMatch::any);
    CHECK(c->for_sender_domain("strict.example").spf_egress_match == SpfEgressMatch::all);
    CHECK(c->for_sender_domain("a.lenient.example").spf_egress_match == SpfEgressMatch::any);  // inherits the default
    CHECK(load("SpfEgressMatch ANY\n")->defaults().spf_egress_match == SpfEgressMatch::any);
    CHECK(load("MaxRecipients 5\n")->defaults().spf_egress_match == SpfEgressMatch::all);
    CHECK(to_string(SpfEgressMatch::any) == "any");
    CHECK(error_of("SpfEgressMatch most") == "/etc/preflight.conf:1: SpfEgressMatch: \"most\" is not one of all, any");
    CHECK(error_of("MaxRecipients 5\nDomain example.org SpfEgressMatch every") ==
          "/etc/preflight.conf:2: SpfEgressMatch: \"every\" is not one of all, any");
    CHECK(error_of("SpfEgressMatch") == "/etc/preflight.conf:1: SpfEgressMatch: missing value");
}

TEST_CASE("Domain line errors", "[config]") {
    std::string p = "/etc/preflight.conf:1: ";
    CHECK(error_of("Domain example.org Socket unix:/x") ==
          p + "Socket: cannot be set per domain (per-domain keys: Mode, EnvelopeSyntaxMode, SizeMode, "
              "MaxMessageSize, SenderDomainMode, UnknownDomainCode, RecipientLimitMode, MaxRecipients, "
              "RecipientLimitReply, AuthMode, AuthPolicy, SpfEgressMatch, QuotaRecipients, QuotaMessages, QuotaPer, "
              "QuotaMode, QuotaCode, RecipientDomainMode, BillingDay, DmarcMode, AlignmentMode, UnsubscribeMode, HeaderSanityMode, Bulk, SuppressionMode, SuppressionScope)");
    CHECK(error_of("Domain example.org EgressAddresses 192.0.2.1")
              .starts_with(p + "EgressAddresses: cannot be set per domain"));
    CHECK(error_of("Domain example.org Frobnicate 1") == p + "Frobnicate: unknown key");
    CHECK(error_of("Domain example.org MaxRecipients") == p + "MaxRecipients: missing value");
    CHECK(error_of("Domain example.org MaxRecipients lots") == p + "MaxRecipients: \"lots\" is not an integer");
    CHECK(error_of("Domain example.org MaxRecipients 0") == p + "MaxRecipients: \"0\" is out of range (1..100000)");
    CHECK(error_of("Domain example.org") == p + "Domain: missing key after example.org (Domain example.org KEY VALUE)");
    CHECK(error_of("Domain") == p + "Domain: missing domain (Domain example.org KEY VALUE)");
    CHECK(error_of("Domain .example.net AuthPolicy off") ==
          p + "Domain: \".example.net\" is not a domain name (for its subdomains write *.example.net)");
    CHECK(error_of("Domain * AuthPolicy off") ==
          p + "Domain: \"*\" matches every domain; set the key without a Domain line");
    CHECK(error_of("Domain ex*ample.org AuthPolicy off") ==
          p + "Domain: \"ex*ample.org\" is not a domain name or *.domain pattern");
    CHECK(error_of("Domain a..b AuthPolicy off") == p + "Domain: \"a..b\" is not a domain name or *.domain pattern");
    CHECK(error_of("Domain bücher.example AuthPolicy off") ==
          p + "Domain: \"bücher.example\" is not ASCII; give the A-label (xn--) form");
    CHECK(errors_of("Domain example.org MaxRecipients 10\nDomain EXAMPLE.org. maxrecipients 20") ==
          std::vector<std::string>{
              "/etc/preflight.conf:2: MaxRecipients: duplicate for example.org (first set at line 1)"});
    // The same key for different patterns, and globally, is no duplicate.
    CHECK(errors_of("MaxRecipients 5\nDomain a.example MaxRecipients 10\nDomain *.a.example MaxRecipients 20").empty());
    // IDNs in A-label form are ordinary domains.
    CHECK(load("Domain xn--bcher-kva.example MaxRecipients 9")
              ->for_sender_domain("XN--BCHER-KVA.example")
              .max_recipients == 9);
}

TEST_CASE("a loaded Config is immutable and shared", "[config]") {
    static_assert(std::is_same_v<decltype(ParseResult{}.config), std::shared_ptr<const Config>>);
    static_assert(std::is_same_v<decltype(std::declval<const Config&>().for_sender_domain("")), const Settings&>);
    static_assert(!std::is_default_constructible_v<Config>);
    auto c = load("Domain example.org MaxRecipients 3");
    std::shared_ptr<const Config> copy = c;  // what a SIGHUP swap keeps alive for sessions in flight
    const Settings* s = &c->for_sender_domain("example.org");
    c = load("Domain example.org MaxRecipients 4");
    CHECK(s->max_recipients == 3);
    CHECK(c->for_sender_domain("example.org").max_recipients == 4);
}

// ---------------------------------------------------------------------------------------------
// Documentation in step with the table

namespace {

// The man page text of one key's entry: from ".It Cm NAME" to the next ".It" or ".El".
std::string man_entry(const std::string& man, std::string_view name) {
    std::string head = ".It Cm " + std::string(name) + " ";
    auto at = man.find(head);
    if (at == std::string::npos) return {};
    auto end = man.size();
    for (const char* stop : {"\n.It ", "\n.El"}) end = std::min(end, man.find(stop, at + head.size()));
    return man.substr(at, end - at);
}

std::string sample_header(const KeyInfo& k) {
    std::string h = "## " + std::string(k.name) + ": ";
    if (k.type == KeyType::enumeration) {
        for (std::size_t i = 0; i < k.allowed.size(); ++i) h += (i ? " | " : "") + std::string(k.allowed[i]);
    } else {
        h += to_string(k.type);
        if (!bounds_text(k).empty()) h += " " + bounds_text(k);
    }
    h += ", default " + (k.default_value.empty() ? std::string("none") : std::string(k.default_value));
    if (k.per_domain) h += ", per domain";
    return h + "\n";
}

}  // namespace

TEST_CASE("man/preflight.conf.5 documents every key with its type, default, range and scope", "[config]") {
    std::string man = read_source("man/preflight.conf.5");
    for (const auto& k : config_keys()) {
        INFO(k.name);
        std::string e = man_entry(man, k.name);
        REQUIRE_FALSE(e.empty());
        std::string first_line = e.substr(0, e.find('\n'));
        if (k.type == KeyType::enumeration) {
            std::string values;
            for (std::size_t i = 0; i < k.allowed.size(); ++i) values += (i ? " | " : "") + std::string(k.allowed[i]);
            CHECK(first_line == ".It Cm " + std::string(k.name) + " Cm " + values);
        } else {
            CHECK(first_line == ".It Cm " + std::string(k.name) + " Ar " + std::string(to_string(k.type)));
        }
        if (k.default_value.empty()) CHECK(e.find("\nDefault: none.\n") != std::string::npos);
        else CHECK(e.find("\nDefault:\n.Ql " + std::string(k.default_value) + " .\n") != std::string::npos);
        if (!bounds_text(k).empty()) CHECK(e.find("\nRange:\n.Ql " + bounds_text(k) + " .\n") != std::string::npos);
        CHECK((e.find("\nPer domain.\n") != std::string::npos) == k.per_domain);
    }
    // ... and no key the table does not have: every entry of the KEYS section is a table key.
    auto keys_at = man.find("\n.Sh KEYS\n");
    auto keys_end = man.find("\n.Sh ", keys_at + 1);
    REQUIRE(keys_at != std::string::npos);
    std::size_t entries = 0;
    for (auto at = man.find("\n.It Cm ", keys_at); at < keys_end; at = man.find("\n.It Cm ", at + 1)) {
        std::string rest = man.substr(at + 8);
        std::string name = rest.substr(0, rest.find(' '));
        if (!std::isupper(static_cast<unsigned char>(name[0]))) continue;  // the list of check modes
        INFO(name);
        CHECK(find_config_key(name) != nullptr);
        ++entries;
    }
    CHECK(entries == config_keys().size());
}

TEST_CASE("conf/preflight.conf documents every key and loads without errors", "[config]") {
    std::string sample = read_source("conf/preflight.conf");
    for (const auto& k : config_keys()) {
        INFO(k.name);
        CHECK(sample.find(sample_header(k)) != std::string::npos);
    }
    std::size_t headers = 0;
    for (auto at = sample.find("\n## "); at != std::string::npos; at = sample.find("\n## ", at + 1)) {
        std::string rest = sample.substr(at + 4);
        auto colon = rest.find(':');
        if (colon != std::string::npos && rest.find(' ') > colon && std::isupper(static_cast<unsigned char>(rest[0]))) {
            INFO(rest.substr(0, colon));
            CHECK(find_config_key(rest.substr(0, colon)) != nullptr);
            ++headers;
        }
    }
    CHECK(headers == config_keys().size());

    auto r = parse_config_file(std::string(PREFLIGHT_SOURCE_DIR) + "/conf/preflight.conf");
    for (const auto& e : r.errors) UNSCOPED_INFO(e.to_string());
    REQUIRE(r.ok());
    // A fresh install runs in dry-run until the operator has set EgressAddresses and looked.
    CHECK(r.config->defaults().mode == RunMode::dry_run);

    // Every commented-out "#Key value" example in it is valid too, once uncommented.
    std::istringstream lines(sample);
    std::string line, uncommented;
    while (std::getline(lines, line))
        if (line.starts_with("#") && line.size() > 1 && std::isupper(static_cast<unsigned char>(line[1])))
            uncommented += line.substr(1) + "\n";
    TempDir dir;
    std::string txt = dir.write("pf1.txt", "p=" + kKeyB64);
    // The examples name files that do not exist here and give both key forms; keep what can load.
    std::string examples;
    std::istringstream ex(uncommented);
    while (std::getline(ex, line)) {
        if (line.starts_with("DkimPublicKey ") || line.starts_with("EgressAddresses ") || line.starts_with("Mode ") ||
            line.starts_with("ApplyToNetworks ") || line.starts_with("QuotaStorePasswordFile ") ||
            line.starts_with("QuotaStoreSentinelPasswordFile ") || line.starts_with("SuppressionStorePasswordFile ") ||
            line.starts_with("SuppressionStoreSentinelPasswordFile "))  // a Redis store's secrets: tested with one
            continue;
        if (line.starts_with("DkimPublicKeyFile ")) line = "DkimPublicKeyFile " + txt;
        examples += line + "\n";
    }
    auto re = parse_config_text("examples", examples + "EgressAddresses 192.0.2.10\n");
    for (const auto& e : re.errors) UNSCOPED_INFO(e.to_string());
    CHECK(re.ok());
}

TEST_CASE("message check keys: off by default, per domain, Bulk a boolean", "[config]") {
    auto c = load(
        "DmarcMode reject\nDomain news.example AlignmentMode tag\nDomain news.example Bulk yes\n"
        "Domain *.example UnsubscribeMode tempfail\nDomain *.example HeaderSanityMode reject\n");
    const Settings& d = c->defaults();
    CHECK(d.dmarc_mode == CheckMode::reject);
    CHECK(d.alignment_mode == CheckMode::off);
    CHECK(d.unsubscribe_mode == CheckMode::off);
    CHECK(d.header_sanity_mode == CheckMode::off);
    CHECK_FALSE(d.bulk);
    const Settings& n = c->for_sender_domain("news.example");
    CHECK(n.dmarc_mode == CheckMode::reject);
    CHECK(n.alignment_mode == CheckMode::tag);
    CHECK(n.bulk);
    CHECK(n.any_message_check());
    const Settings& w = c->for_sender_domain("a.example");
    CHECK(w.unsubscribe_mode == CheckMode::tempfail);
    CHECK(w.header_sanity_mode == CheckMode::reject);
    CHECK_FALSE(load("MaxRecipients 5")->defaults().any_message_check());
    CHECK(error_of("Domain news.example Bulk maybe") ==
          "/etc/preflight.conf:1: Bulk: \"maybe\" is not a boolean (yes, no, true, false, 1, 0)");
    CHECK(error_of("DmarcMode strict") ==
          "/etc/preflight.conf:1: DmarcMode: \"strict\" is not one of reject, tempfail, tag, off");
}
