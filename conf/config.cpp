// The key table of preflight.conf and the parser it drives. A row says how a key is spelled,
// its type, default (as conf text, parsed by the same code as the file, so the documented
// default is the real one), bounds or allowed values, whether a Domain line may set it, one
// line of help, and where the parsed value goes. Everything else — duplicate detection,
// messages, bounds in messages, the -n check — is generic over the rows.
#include "config.hpp"

#include "ascii.hpp"
#include "socket_address.hpp"
#include "run_as.hpp"  // parse_user_group
#include "time_zone.hpp"

#include <syslog.h>

#include <algorithm>
#include <cerrno>
#include <charconv>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <type_traits>
#include <variant>

namespace preflight {

// ---------------------------------------------------------------------------------------------
// Enum spellings, in enum order: to_string() and the table's allowed values share them.
namespace {
constexpr std::string_view kRunModes[] = {"enforce", "dry-run"};
constexpr std::string_view kCheckModes[] = {"reject", "tempfail", "tag", "off"};
constexpr std::string_view kRecipientReplies[] = {"tempfail", "reject"};
constexpr std::string_view kAuthPolicies[] = {"spf-or-dkim", "spf-and-dkim", "spf", "dkim", "off"};
constexpr std::string_view kSpfEgressMatch[] = {"all", "any"};
constexpr std::string_view kDnsErrorActions[] = {"tempfail", "accept"};
constexpr std::string_view kApplyTo[] = {"all", "authenticated", "networks"};
constexpr std::string_view kFacilities[] = {"mail",   "daemon", "local0", "local1", "local2",
                                            "local3", "local4", "local5", "local6", "local7"};
constexpr std::string_view kReplyCodes[] = {"450", "550"};
constexpr std::string_view kQuotaPer[] = {"domain", "sender", "login"};
constexpr std::string_view kQuotaCodes[] = {"452", "550"};
constexpr std::string_view kQuotaStoreErrorActions[] = {"tempfail", "accept"};
constexpr std::string_view kQuotaWindows[] = {"minute", "hour", "day", "week", "month"};
constexpr std::string_view kSuppressionModes[] = {"reject", "tag", "off", "dry-run"};
constexpr std::string_view kSuppressionScopes[] = {"domain", "global"};
constexpr std::string_view kSuppressionStoreErrorActions[] = {"tempfail", "accept"};

template <class E, std::size_t N>
std::string_view name_of(E v, const std::string_view (&names)[N]) {
    auto i = static_cast<std::size_t>(v);
    return i < N ? names[i] : std::string_view("?");
}
}  // namespace

std::string_view to_string(RunMode v) { return name_of(v, kRunModes); }
std::string_view to_string(CheckMode v) { return name_of(v, kCheckModes); }
std::string_view to_string(RecipientLimitReply v) { return name_of(v, kRecipientReplies); }
std::string_view to_string(AuthPolicy v) { return name_of(v, kAuthPolicies); }
std::string_view to_string(SpfEgressMatch v) { return name_of(v, kSpfEgressMatch); }
std::string_view to_string(DnsErrorAction v) { return name_of(v, kDnsErrorActions); }
std::string_view to_string(ApplyTo v) { return name_of(v, kApplyTo); }
std::string_view to_string(LogFacility v) { return name_of(v, kFacilities); }
std::string_view to_string(QuotaPer v) { return name_of(v, kQuotaPer); }
std::string_view to_string(QuotaStoreErrorAction v) { return name_of(v, kQuotaStoreErrorActions); }
std::string_view to_string(QuotaWindow v) { return name_of(v, kQuotaWindows); }
std::string_view to_string(SuppressionMode v) { return name_of(v, kSuppressionModes); }
std::string_view to_string(SuppressionScope v) { return name_of(v, kSuppressionScopes); }
std::string_view to_string(SuppressionStoreErrorAction v) { return name_of(v, kSuppressionStoreErrorActions); }

int to_syslog_facility(LogFacility v) {
    static constexpr int facilities[] = {LOG_MAIL,   LOG_DAEMON, LOG_LOCAL0, LOG_LOCAL1, LOG_LOCAL2,
                                         LOG_LOCAL3, LOG_LOCAL4, LOG_LOCAL5, LOG_LOCAL6, LOG_LOCAL7};
    static_assert(std::size(facilities) == std::size(kFacilities));
    return facilities[static_cast<std::size_t>(v)];
}

std::string_view to_string(KeyType t) {
    switch (t) {
    case KeyType::string: return "string";
    case KeyType::path: return "path";
    case KeyType::boolean: return "boolean";
    case KeyType::integer: return "integer";
    case KeyType::octal: return "octal";
    case KeyType::size: return "size";
    case KeyType::duration: return "duration";
    case KeyType::enumeration: return "enum";
    case KeyType::socket: return "socket";
    case KeyType::user: return "user";
    case KeyType::address_list: return "address-list";
    case KeyType::network_list: return "network-list";
    case KeyType::nameserver_list: return "nameserver-list";
    case KeyType::string_list: return "string-list";
    case KeyType::base64: return "base64";
    case KeyType::listen_address: return "listen-address";
    case KeyType::rate_list: return "rate-list";
    }
    return "?";
}

namespace detail {

// Our DKIM public key, from DkimPublicKey or DkimPublicKeyFile.
struct DkimKey {
    std::vector<std::uint8_t> bytes;
    std::string base64;
    std::string file;
};

// A parsed value; the alternative is fixed by the row's KeyType (enums: the index into allowed;
// size: bytes; duration: milliseconds).
using Value =
    std::variant<bool, std::int64_t, std::string, std::vector<std::string>, SocketAddress, std::vector<IpAddress>,
                 std::vector<Network>, DkimKey, UserGroup, std::vector<QuotaRate>, QuotaStoreSpec, RedisCredentials>;

struct Target {
    GlobalSettings& g;
    Settings& s;
};

struct Row {
    KeyInfo info;
    // Key-specific checks or conversion after the type's parser (selector syntax, reading the
    // key file); false with why set on failure. May be null.
    bool (*refine)(Value& v, std::string& why) = nullptr;
    void (*store)(Target& t, const Value& v) = nullptr;
};

}  // namespace detail

namespace {
using detail::DkimKey;
using detail::Row;
using detail::Target;
using detail::Value;

// Splits off the next blank-separated word; s is left trimmed.
std::string_view next_word(std::string_view& s) {
    std::size_t n = 0;
    while (n < s.size() && !ascii::is_hspace(s[n])) ++n;
    std::string_view w = s.substr(0, n);
    s.remove_prefix(n);
    while (!s.empty() && ascii::is_hspace(s.front())) s.remove_prefix(1);
    return w;
}

// List items are separated by commas and/or blanks; empty items are skipped.
std::vector<std::string_view> split_list(std::string_view s) {
    std::vector<std::string_view> items;
    std::size_t i = 0;
    while (i < s.size()) {
        while (i < s.size() && (s[i] == ',' || ascii::is_hspace(s[i]))) ++i;
        std::size_t start = i;
        while (i < s.size() && s[i] != ',' && !ascii::is_hspace(s[i])) ++i;
        if (i > start) items.push_back(s.substr(start, i - start));
    }
    return items;
}

// A value as it appears in a message: quoted, control characters made visible, long ones cut.
std::string quote(std::string_view v) {
    constexpr std::size_t kMax = 80;
    std::string out = "\"";
    for (std::size_t i = 0; i < v.size() && i < kMax; ++i) {
        auto c = static_cast<unsigned char>(v[i]);
        out += (c < 0x20 || c == 0x7f) ? '?' : v[i];
    }
    if (v.size() > kMax) out += "...";
    return out + "\"";
}

std::string join(std::span<const std::string_view> names, std::string_view sep) {
    std::string out;
    for (auto n : names) {
        if (!out.empty()) out += sep;
        out += n;
    }
    return out;
}

std::string size_text(std::int64_t bytes) {
    static constexpr std::pair<int, char> units[] = {{30, 'G'}, {20, 'M'}, {10, 'K'}};
    for (auto [shift, unit] : units) {
        std::int64_t m = std::int64_t{1} << shift;
        if (bytes >= m && bytes % m == 0) return std::to_string(bytes / m) + unit;
    }
    return std::to_string(bytes);
}

std::string duration_text(std::int64_t ms) {
    return ms % 1000 == 0 ? std::to_string(ms / 1000) + "s" : std::to_string(ms) + "ms";
}

std::string octal_text(std::int64_t v) {
    char buf[24];
    std::snprintf(buf, sizeof buf, "0%llo", static_cast<unsigned long long>(v));
    return buf;
}

// ---- key-specific refinements

bool valid_name_char(char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' || c == '-' ||
           c == '.';
}

// One DNS label or several ("pf1", "2024.pf"); letters, digits, '-' and '_'.
bool valid_dns_name(std::string_view s, std::size_t max) {
    if (s.empty() || s.size() > max || s.front() == '.' || s.back() == '.') return false;
    std::size_t label = 0;
    for (char c : s) {
        if (c == '.') {
            if (label == 0) return false;
            label = 0;
        } else if (!valid_name_char(c) || ++label > 63) {
            return false;
        }
    }
    return true;
}

bool refine_selectors(Value& v, std::string& why) {
    for (auto& sel : std::get<std::vector<std::string>>(v)) {
        sel = ascii::to_lower(sel);
        if (auto at = sel.find("._domainkey"); at != std::string::npos) {
            why = quote(sel) + " is a DNS name; give the selector alone (" + sel.substr(0, at) + ")";
            return false;
        }
        if (!valid_dns_name(sel, 253)) {
            why = quote(sel) + " is not a DKIM selector (letters, digits, '-', '_', dot-separated labels)";
            return false;
        }
    }
    return true;
}

// The key material of a DKIM public key, as text: a PEM PUBLIC KEY block, a DNS TXT record as
// opendkim-genkey writes it ("v=DKIM1; k=rsa; p=..."), or the bare base64 p= value.
std::optional<DkimKey> dkim_key_from_text(std::string_view text, std::string& why) {
    if (text.find("PRIVATE KEY") != std::string_view::npos) {
        why = "holds a private key; give the public key (openssl pkey -in KEY -pubout)";
        return std::nullopt;
    }
    std::string b64;
    if (auto begin = text.find("-----BEGIN "); begin != std::string_view::npos) {
        auto label_end = text.find("-----", begin + 11);
        std::string_view label = text.substr(begin + 11, label_end - (begin + 11));
        if (label_end == std::string_view::npos || label != "PUBLIC KEY") {
            why = "holds a PEM block other than PUBLIC KEY";
            return std::nullopt;
        }
        auto body = label_end + 5;
        auto end = text.find("-----END", body);
        if (end == std::string_view::npos) {
            why = "has no -----END PUBLIC KEY----- line";
            return std::nullopt;
        }
        b64 = std::string(text.substr(body, end - body));
    } else if (text.find("p=") != std::string_view::npos) {
        // A TXT record: join its quoted character-strings (zone file syntax), then find p=.
        std::string record;
        if (text.find('"') != std::string_view::npos) {
            bool in = false;
            for (char c : text) {
                if (c == '"') in = !in;
                else if (in) record += c;
            }
        } else {
            record = std::string(text);
        }
        std::string_view rest = record;
        bool found = false;
        while (!rest.empty() && !found) {
            auto semi = rest.find(';');
            std::string_view tag = ascii::trim(rest.substr(0, semi));
            rest = semi == std::string_view::npos ? std::string_view() : rest.substr(semi + 1);
            if (tag.size() >= 2 && tag[0] == 'p' && ascii::trim(tag.substr(1)).starts_with('=')) {
                tag = ascii::trim(tag.substr(1));
                b64 = std::string(ascii::trim(tag.substr(1)));
                found = true;
            }
        }
        if (!found) {
            why = "has no p= tag";
            return std::nullopt;
        }
    } else {
        b64 = std::string(text);
    }
    std::erase_if(b64, [](char c) { return ascii::is_hspace(c) || c == '\r' || c == '\n'; });
    auto bytes = decode_base64(b64);
    if (!bytes) {
        why = "is not base64";
        return std::nullopt;
    }
    if (bytes->empty()) {
        why = "holds an empty key (a revoked key has p= empty)";
        return std::nullopt;
    }
    return DkimKey{std::move(*bytes), std::move(b64), {}};
}

bool refine_inline_key(Value& v, std::string& why) {
    const auto& text = std::get<std::string>(v);
    if (text.empty()) {
        v = DkimKey{};
        return true;
    }
    auto key = dkim_key_from_text(text, why);
    if (!key) {
        why = quote(text) + " " + why;
        return false;
    }
    v = std::move(*key);
    return true;
}

bool refine_key_file(Value& v, std::string& why) {
    std::string path = std::get<std::string>(v);
    if (path.empty()) {
        v = DkimKey{};
        return true;
    }
    // A FIFO (or /dev/stdin, a tty) would block the parse, and `preflight-milter -n` with it.
    std::error_code ec;
    const auto type = std::filesystem::status(path, ec).type();
    if (!ec && type != std::filesystem::file_type::regular) {
        why = quote(path) + " is not a regular file";
        return false;
    }
    std::ifstream in(path, std::ios::binary);
    if (!in) {
        why = quote(path) + " cannot be read: " + std::strerror(errno);
        return false;
    }
    constexpr std::size_t kMaxKeyFile = 64 * 1024;  // a public key is a few hundred bytes
    std::string text(kMaxKeyFile + 1, '\0');
    in.read(text.data(), static_cast<std::streamsize>(text.size()));
    text.resize(static_cast<std::size_t>(in.gcount()));
    if (text.size() > kMaxKeyFile) {
        why = quote(path) + " is too large to be a public key";
        return false;
    }
    auto key = dkim_key_from_text(text, why);
    if (!key) {
        why = quote(path) + " " + why;
        return false;
    }
    key->file = path;
    v = std::move(*key);
    return true;
}

// ---- stores: one generic assignment per member type, so most rows name only the member

template <class T>
void assign(T& dst, const Value& v) {
    if constexpr (std::is_same_v<T, bool>) dst = std::get<bool>(v);
    else if constexpr (std::is_enum_v<T> || std::is_integral_v<T>) dst = static_cast<T>(std::get<std::int64_t>(v));
    else if constexpr (std::is_same_v<T, std::chrono::milliseconds>) dst = T(std::get<std::int64_t>(v));
    else dst = std::get<T>(v);
}

template <auto Member>
void set_policy(Target& t, const Value& v) {
    assign(t.s.*Member, v);
}

template <auto Member>
void set_global(Target& t, const Value& v) {
    assign(t.g.*Member, v);
}

void set_user(Target& t, const Value& v) {
    const auto& ug = std::get<UserGroup>(v);
    t.g.user = ug.user;
    t.g.group = ug.group;
}

void set_dkim_key(Target& t, const Value& v) {
    const auto& k = std::get<DkimKey>(v);
    t.g.dkim_public_key = k.bytes;
    t.g.dkim_public_key_base64 = k.base64;
    t.g.dkim_public_key_file = k.file;
}

void set_quota_code(Target& t, const Value& v) { t.s.quota_code = std::get<std::int64_t>(v) == 0 ? 452 : 550; }

bool refine_quota_store(Value& v, std::string& why) {
    auto spec = parse_quota_store(std::get<std::string>(v), &why);
    if (!spec) return false;
    v = std::move(*spec);
    return true;
}

bool refine_time_zone(Value& v, std::string& why) { return TimeZone::load(std::get<std::string>(v), &why).has_value(); }

// "80, 100": percentages of a plan, each 1..100, ascending, none twice, at most 8.
bool refine_notice_shares(Value& v, std::string& why) {
    std::uint32_t last = 0;
    if (std::get<std::vector<std::string>>(v).size() > 8) {
        why = "at most 8 shares";
        return false;
    }
    for (const std::string& w : std::get<std::vector<std::string>>(v)) {
        std::uint32_t n = 0;
        auto [end, ec] = std::from_chars(w.data(), w.data() + w.size(), n);
        if (ec != std::errc{} || end != w.data() + w.size() || n < 1 || n > 100 || n <= last) {
            why = quote(w) + " is not a percentage 1..100 above the one before it (80, 100)";
            return false;
        }
        last = n;
    }
    return true;
}

void set_notice_shares(Target& t, const Value& v) {
    t.g.quota_notice_percent.fill(0);
    std::size_t i = 0;
    for (const std::string& w : std::get<std::vector<std::string>>(v))
        t.g.quota_notice_percent[i++] = static_cast<std::uint8_t>(std::stoul(w));
}

// An empty path: no credentials (the default). Otherwise the file must read as redis_credentials.cpp says.
bool refine_redis_credentials(Value& v, std::string& why) {
    std::string path = std::get<std::string>(v);
    if (path.empty()) {
        v = RedisCredentials{};
        return true;
    }
    auto c = read_redis_credentials(path, &why);
    if (!c) return false;
    v = std::move(*c);
    return true;
}

bool refine_suppression_store(Value& v, std::string& why) {
    return parse_quota_store(std::get<std::string>(v), &why, "SuppressionStorePasswordFile").has_value();
}

void set_unknown_domain_code(Target& t, const Value& v) {
    t.s.unknown_domain_code = std::get<std::int64_t>(v) == 0 ? 450 : 550;
}

// ---------------------------------------------------------------------------------------------
// THE TABLE. Order is the order of the man page and the sample conf.
constexpr std::int64_t KiB = 1024, GiB = KiB * KiB * KiB;

const Row kRows[] = {
    // Daemon
    {.info = {.name = "Socket",
              .type = KeyType::socket,
              .default_value = "unix:/run/preflight-milter/milter.sock",
              .help = "where the milter listens; Postfix's smtpd_milters names the same socket"},
     .store = set_global<&GlobalSettings::socket>},
    {.info = {.name = "UserID",
              .type = KeyType::user,
              .help = "user (and group) to run as once the socket exists; empty: do not change"},
     .store = set_user},
    {.info = {.name = "RunAsRoot",
              .type = KeyType::boolean,
              .default_value = "no",
              .help = "without UserID, go on running as root; no: refuse to start as root"},
     .store = set_global<&GlobalSettings::run_as_root>},
    {.info = {.name = "PidFile", .type = KeyType::path, .help = "file to write the process id to; empty: none"},
     .store = set_global<&GlobalSettings::pid_file>},
    {.info = {.name = "Umask",
              .type = KeyType::octal,
              .default_value = "117",
              .min = 0,
              .max = 0777,
              .help = "umask for files the milter creates, the unix socket included"},
     .store = set_global<&GlobalSettings::umask>},
    {.info = {.name = "Syslog",
              .type = KeyType::boolean,
              .default_value = "yes",
              .help = "log one line per decision to syslog; no: to standard error"},
     .store = set_global<&GlobalSettings::syslog>},
    {.info = {.name = "LogFacility",
              .type = KeyType::enumeration,
              .default_value = "mail",
              .allowed = kFacilities,
              .help = "syslog facility"},
     .store = set_global<&GlobalSettings::log_facility>},
    {.info = {.name = "MetricsListen",
              .type = KeyType::listen_address,
              .help = "ip:port of the Prometheus /metrics endpoint (loopback advised); empty: none"},
     .store = set_global<&GlobalSettings::metrics_listen>},
    // DNS
    {.info = {.name = "Nameservers",
              .type = KeyType::nameserver_list,
              .help = "nameservers to ask (ip, ip:port, [ipv6]:port); empty: those of /etc/resolv.conf"},
     .store = set_global<&GlobalSettings::nameservers>},
    {.info = {.name = "DnsTimeout",
              .type = KeyType::duration,
              .default_value = "5s",
              .min = 100,
              .max = 60'000,
              .help = "longest wait for a DNS answer before it counts as DNS trouble"},
     .store = set_global<&GlobalSettings::dns_timeout>},
    {.info = {.name = "DnsCacheSize",
              .type = KeyType::integer,
              .default_value = "10000",
              .min = 100,
              .max = 10'000'000,
              .help = "DNS answers kept in the cache, positive and negative"},
     .store = set_global<&GlobalSettings::dns_cache_size>},
    {.info = {.name = "OnDnsError",
              .type = KeyType::enumeration,
              .default_value = "tempfail",
              .allowed = kDnsErrorActions,
              .help = "what DNS trouble leads to: tempfail (451 4.4.3) or accept"},
     .store = set_global<&GlobalSettings::on_dns_error>},
    // Which messages are checked
    {.info = {.name = "ApplyTo",
              .type = KeyType::enumeration,
              .default_value = "all",
              .allowed = kApplyTo,
              .help = "which clients' mail is checked: all, SASL-authenticated only, or ApplyToNetworks only"},
     .store = set_global<&GlobalSettings::apply_to>},
    {.info = {.name = "ApplyToNetworks",
              .type = KeyType::network_list,
              .help = "client networks whose mail is checked when ApplyTo is networks"},
     .store = set_global<&GlobalSettings::apply_to_networks>},
    // Policy: all of these may be set per sender domain
    {.info = {.name = "Mode",
              .type = KeyType::enumeration,
              .default_value = "enforce",
              .allowed = kRunModes,
              .per_domain = true,
              .help = "enforce: reply as the checks decide; dry-run: log it, accept"},
     .store = set_policy<&Settings::mode>},
    {.info = {.name = "EnvelopeSyntaxMode",
              .type = KeyType::enumeration,
              .default_value = "reject",
              .allowed = kCheckModes,
              .per_domain = true,
              .help = "MAIL FROM and RCPT TO addresses that are not RFC 5321 (501 5.1.3)"},
     .store = set_policy<&Settings::envelope_syntax_mode>},
    {.info = {.name = "SizeMode",
              .type = KeyType::enumeration,
              .default_value = "reject",
              .allowed = kCheckModes,
              .per_domain = true,
              .help = "messages above MaxMessageSize, announced or actual (552 5.3.4)"},
     .store = set_policy<&Settings::size_mode>},
    {.info = {.name = "MaxMessageSize",
              .type = KeyType::size,
              .default_value = "20M",
              .min = KiB,
              .max = 100 * GiB,
              .per_domain = true,
              .help = "largest message accepted, in bytes or with K, M, G (binary)"},
     .store = set_policy<&Settings::max_message_size>},
    {.info = {.name = "SenderDomainMode",
              .type = KeyType::enumeration,
              .default_value = "reject",
              .allowed = kCheckModes,
              .per_domain = true,
              .help = "sender domains that do not exist, take no mail, or publish a null MX"},
     .store = set_policy<&Settings::sender_domain_mode>},
    {.info = {.name = "UnknownDomainCode",
              .type = KeyType::enumeration,
              .default_value = "550",
              .allowed = kReplyCodes,
              .per_domain = true,
              .help = "reply to a sender domain that does not exist: 550 5.1.8 or 450 4.1.8, as Postfix"},
     .store = set_unknown_domain_code},
    {.info = {.name = "RecipientLimitMode",
              .type = KeyType::enumeration,
              .default_value = "reject",
              .allowed = kCheckModes,
              .per_domain = true,
              .help = "recipients beyond MaxRecipients"},
     .store = set_policy<&Settings::recipient_limit_mode>},
    {.info = {.name = "MaxRecipients",
              .type = KeyType::integer,
              .default_value = "50",
              .min = 1,
              .max = 100'000,
              .per_domain = true,
              .help = "recipients accepted per message"},
     .store = set_policy<&Settings::max_recipients>},
    {.info = {.name = "RecipientLimitReply",
              .type = KeyType::enumeration,
              .default_value = "tempfail",
              .allowed = kRecipientReplies,
              .per_domain = true,
              .help = "reply to each recipient beyond MaxRecipients: tempfail 452 4.5.3, reject 550 5.5.3"},
     .store = set_policy<&Settings::recipient_limit_reply>},
    {.info = {.name = "AuthMode",
              .type = KeyType::enumeration,
              .default_value = "reject",
              .allowed = kCheckModes,
              .per_domain = true,
              .help = "mail whose sender domain fails AuthPolicy (550 5.7.26)"},
     .store = set_policy<&Settings::auth_mode>},
    {.info = {.name = "AuthPolicy",
              .type = KeyType::enumeration,
              .default_value = "spf-or-dkim",
              .allowed = kAuthPolicies,
              .per_domain = true,
              .help = "what the sender domain must publish for the relay's mail to authenticate"},
     .store = set_policy<&Settings::auth_policy>},
    {.info = {.name = "SpfEgressMatch",
              .type = KeyType::enumeration,
              .default_value = "all",
              .allowed = kSpfEgressMatch,
              .per_domain = true,
              .help = "SPF must pass for all EgressAddresses (the relay sends from any of them) or any one"},
     .store = set_policy<&Settings::spf_egress_match>},
    // Sending quotas
    {.info = {.name = "QuotaRecipients",
              .type = KeyType::rate_list,
              .per_domain = true,
              .help =
                  "recipients a QuotaPer subject may send per window: 10000/day, 500/hour, 100/minute; empty: none"},
     .store = set_policy<&Settings::quota_recipients>},
    {.info = {.name = "QuotaMessages",
              .type = KeyType::rate_list,
              .per_domain = true,
              .help = "messages a QuotaPer subject may send per window, as QuotaRecipients; empty: none"},
     .store = set_policy<&Settings::quota_messages>},
    {.info = {.name = "QuotaPer",
              .type = KeyType::enumeration,
              .default_value = "domain",
              .allowed = kQuotaPer,
              .per_domain = true,
              .help = "whose sending a quota counts: the sender domain, sender address or SASL login"},
     .store = set_policy<&Settings::quota_per>},
    {.info = {.name = "QuotaMode",
              .type = KeyType::enumeration,
              .default_value = "reject",
              .allowed = kCheckModes,
              .per_domain = true,
              .help = "recipients beyond a quota (QuotaCode, at RCPT TO)"},
     .store = set_policy<&Settings::quota_mode>},
    {.info = {.name = "QuotaCode",
              .type = KeyType::enumeration,
              .default_value = "452",
              .allowed = kQuotaCodes,
              .per_domain = true,
              .help = "reply beyond a quota: 452 4.7.1 (the sender retries) or 550 5.7.1"},
     .store = set_quota_code},
    // Recipient domains
    {.info = {.name = "RecipientDomainMode",
              .type = KeyType::enumeration,
              .default_value = "off",
              .allowed = kCheckModes,
              .per_domain = true,
              .help = "recipient domains that do not exist (550 5.1.2) or publish a null MX (556 5.1.10)"},
     .store = set_policy<&Settings::recipient_domain_mode>},
    {.info = {.name = "QuotaStore",
              .type = KeyType::string,
              .default_value = "sqlite:/var/lib/preflight/quota.db",
              .help = "where quota counters live: sqlite:/PATH (this relay), redis://HOST[:PORT][/DB] or "
                      "redis-sentinel://HOST[:PORT],.../MASTER[/DB] (a cluster)"},
     .refine = refine_quota_store,
     .store = set_global<&GlobalSettings::quota_store>},
    {.info = {.name = "QuotaStoreTimeout",
              .type = KeyType::duration,
              .default_value = "1s",
              .min = 10,
              .max = 30'000,
              .help = "longest wait for the quota store (Redis) before it counts as a store error"},
     .store = set_global<&GlobalSettings::quota_store_timeout>},
    {.info = {.name = "OnQuotaStoreError",
              .type = KeyType::enumeration,
              .default_value = "tempfail",
              .allowed = kQuotaStoreErrorActions,
              .help = "what an unreachable quota store leads to: tempfail (451 4.3.0) or accept (uncounted)"},
     .store = set_global<&GlobalSettings::on_quota_store_error>},
    // Plans and tenants
    {.info = {.name = "BillingDay",
              .type = KeyType::integer,
              .default_value = "1",
              .min = 1,
              .max = 31,
              .per_domain = true,
              .help =
                  "day of the month a /month quota renews on (1: calendar month; 31: the last day of short months)"},
     .store = set_policy<&Settings::billing_day>},
    {.info = {.name = "PlanTimeZone",
              .type = KeyType::string,
              .default_value = "UTC",
              .help = "time zone whose midnight renews /week and /month quotas: UTC or a tz name (Europe/Berlin)"},
     .refine = refine_time_zone,
     .store = set_global<&GlobalSettings::plan_time_zone>},
    {.info = {.name = "TenantsFile",
              .type = KeyType::path,
              .help =
                  "file of tenants (SASL logins or sender domains) and their plans, preflight-tenants(5); empty: none"},
     .store = set_global<&GlobalSettings::tenants_file>},
    {.info = {.name = "QuotaNoticeShares",
              .type = KeyType::string_list,
              .default_value = "80 100",
              .help = "percentages of a quota whose crossing is logged and counted in metrics; empty: none"},
     .refine = refine_notice_shares,
     .store = set_notice_shares},
    {.info = {.name = "QuotaStorePasswordFile",
              .type = KeyType::path,
              .help = "file with the Redis user and password (USER:PASSWORD or PASSWORD), not readable by others"},
     .refine = refine_redis_credentials,
     .store = set_global<&GlobalSettings::quota_store_credentials>},
    {.info = {.name = "QuotaStoreSentinelPasswordFile",
              .type = KeyType::path,
              .help = "file with the Sentinels' user and password, when they require one (redis-sentinel://)"},
     .refine = refine_redis_credentials,
     .store = set_global<&GlobalSettings::quota_store_sentinel_credentials>},
    // Authentication material
    {.info = {.name = "EgressAddresses",
              .type = KeyType::address_list,
              .help = "addresses the relay sends from; SPF is evaluated for each"},
     .store = set_global<&GlobalSettings::egress_addresses>},
    {.info = {.name = "DkimSelectors",
              .type = KeyType::string_list,
              .help = "selectors at which a sender domain may publish our DKIM public key"},
     .refine = refine_selectors,
     .store = set_global<&GlobalSettings::dkim_selectors>},
    {.info = {.name = "DkimPublicKey",
              .type = KeyType::base64,
              .help = "our DKIM public key, the base64 p= value; or DkimPublicKeyFile"},
     .refine = refine_inline_key,
     .store = set_dkim_key},
    {.info = {.name = "DkimPublicKeyFile",
              .type = KeyType::path,
              .help = "file with our DKIM public key: PEM, a DKIM TXT record, or base64"},
     .refine = refine_key_file,
     .store = set_dkim_key},
    // Message checks: the bulk-sender requirements, at end of message
    {.info = {.name = "DmarcMode",
              .type = KeyType::enumeration,
              .default_value = "off",
              .allowed = kCheckModes,
              .per_domain = true,
              .help = "From domains without a valid DMARC record, here or at the organisational domain (550 5.7.26)"},
     .store = set_policy<&Settings::dmarc_mode>},
    {.info = {.name = "AlignmentMode",
              .type = KeyType::enumeration,
              .default_value = "off",
              .allowed = kCheckModes,
              .per_domain = true,
              .help = "From domains aligned with neither SPF's domain nor a DKIM signature's d= (550 5.7.26)"},
     .store = set_policy<&Settings::alignment_mode>},
    {.info = {.name = "UnsubscribeMode",
              .type = KeyType::enumeration,
              .default_value = "off",
              .allowed = kCheckModes,
              .per_domain = true,
              .help = "bulk mail without signed RFC 8058 one-click unsubscribe headers (550 5.7.1)"},
     .store = set_policy<&Settings::unsubscribe_mode>},
    {.info = {.name = "HeaderSanityMode",
              .type = KeyType::enumeration,
              .default_value = "off",
              .allowed = kCheckModes,
              .per_domain = true,
              .help = "headers receivers refuse: not one From, Date, Message-ID; duplicates; bad syntax (550 5.6.0)"},
     .store = set_policy<&Settings::header_sanity_mode>},
    {.info = {.name = "Bulk",
              .type = KeyType::boolean,
              .default_value = "no",
              .per_domain = true,
              .help = "treat every message as bulk mail (UnsubscribeMode), not only those with List-Id or Precedence"},
     .store = set_policy<&Settings::bulk>},
    // Egress reverse DNS
    {.info = {.name = "EgressRdnsInterval",
              .type = KeyType::duration,
              .default_value = "1h",
              .min = 60'000,
              .max = 86'400'000,
              .help = "how often the reverse DNS of EgressAddresses is checked (also at start and reload)"},
     .store = set_global<&GlobalSettings::egress_rdns_interval>},
    // Suppression
    {.info = {.name = "SuppressionMode",
              .type = KeyType::enumeration,
              .default_value = "off",
              .allowed = kSuppressionModes,
              .per_domain = true,
              .help = "recipients on the suppression list at RCPT TO: refused with the reason, tagged, logged only"},
     .store = set_policy<&Settings::suppression_mode>},
    {.info = {.name = "SuppressionScope",
              .type = KeyType::enumeration,
              .default_value = "domain",
              .allowed = kSuppressionScopes,
              .per_domain = true,
              .help = "whose list a failure suppresses the recipient on: the sender domain's or every sender's"},
     .store = set_policy<&Settings::suppression_scope>},
    {.info = {.name = "SuppressionExpiry",
              .type = KeyType::duration,
              .default_value = "180d",
              .min = 3'600'000,
              .max = 3650ll * 86'400'000,
              .help = "how long a recipient stays suppressed after its last hard failure"},
     .store = set_policy<&Settings::suppression_expiry>},
    {.info = {.name = "SuppressionComplaintExpiry",
              .type = KeyType::duration,
              .default_value = "730d",
              .min = 3'600'000,
              .max = 3650ll * 86'400'000,
              .help = "how long a recipient stays suppressed after its last complaint"},
     .store = set_policy<&Settings::suppression_complaint_expiry>},
    {.info = {.name = "SuppressionQuotaFailures",
              .type = KeyType::integer,
              .default_value = "3",
              .min = 1,
              .max = 100,
              .help = "full-mailbox failures within SuppressionQuotaPeriod that suppress the recipient"},
     .store = set_policy<&Settings::suppression_quota_failures>},
    {.info = {.name = "SuppressionQuotaPeriod",
              .type = KeyType::duration,
              .default_value = "7d",
              .min = 3'600'000,
              .max = 365ll * 86'400'000,
              .help = "the period over which SuppressionQuotaFailures are counted"},
     .store = set_policy<&Settings::suppression_quota_period>},
    {.info = {.name = "SuppressComplaints",
              .type = KeyType::boolean,
              .default_value = "yes",
              .help = "a complaint (ARF abuse report) suppresses the recipient at once"},
     .store = set_policy<&Settings::suppress_complaints>},
    {.info = {.name = "SuppressionStore",
              .type = KeyType::string,
              .default_value = "sqlite:/var/lib/preflight/suppression.db",
              .help = "where the suppression list lives: sqlite:/PATH (one relay), redis://HOST[:PORT][/DB] or "
                      "redis-sentinel://HOST[:PORT],.../MASTER[/DB] (a cluster)"},
     .refine = refine_suppression_store,
     .store = set_global<&GlobalSettings::suppression_store>},
    {.info = {.name = "SuppressionStoreTimeout",
              .type = KeyType::duration,
              .default_value = "250ms",
              .min = 10,
              .max = 30'000,
              .help = "longest wait for the suppression store before the lookup counts as a store error"},
     .store = set_global<&GlobalSettings::suppression_store_timeout>},
    {.info = {.name = "OnSuppressionStoreError",
              .type = KeyType::enumeration,
              .default_value = "tempfail",
              .allowed = kSuppressionStoreErrorActions,
              .help = "what an unreachable suppression store leads to: tempfail (451 4.3.0) or accept (unchecked)"},
     .store = set_global<&GlobalSettings::on_suppression_store_error>},
    {.info = {.name = "SuppressionStorePasswordFile",
              .type = KeyType::path,
              .help = "file with the suppression store's Redis user and password (USER:PASSWORD or PASSWORD), not "
                      "readable by others"},
     .refine = refine_redis_credentials,
     .store = set_global<&GlobalSettings::suppression_store_credentials>},
    {.info = {.name = "SuppressionStoreSentinelPasswordFile",
              .type = KeyType::path,
              .help = "file with the suppression store's Sentinels' user and password, when they require one "
                      "(redis-sentinel://)"},
     .refine = refine_redis_credentials,
     .store = set_global<&GlobalSettings::suppression_store_sentinel_credentials>},
    {.info = {.name = "SuppressionTraceKeyFile",
              .type = KeyType::path,
              .help = "file with the key of the trace header on single-recipient messages; empty: no header"},
     .store = set_global<&GlobalSettings::suppression_trace_key_file>},
};

std::size_t row_index(std::string_view name) {
    for (std::size_t i = 0; i < std::size(kRows); ++i)
        if (ascii::iequals(kRows[i].info.name, name)) return i;
    return std::size(kRows);
}

std::size_t must_row(std::string_view name) {
    auto i = row_index(name);
    if (i == std::size(kRows)) std::abort();  // a cross-check names a key the table lacks
    return i;
}

bool bounded(const KeyInfo& k) { return k.min != 0 || k.max != 0; }

std::optional<std::int64_t> parse_int64(std::string_view s) {
    std::int64_t v{};
    if (s.empty() || s.front() == '+') return std::nullopt;
    auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
    if (ec != std::errc() || p != s.data() + s.size()) return std::nullopt;
    return v;
}

// The type's parser. On failure, why is the text after "KEY: " and starts with the value.
// The numeric types: integer, octal, size, duration, each within the key's bounds. Digits that
// do not fit are a range problem, not a syntax one.
std::optional<Value> parse_number_value(const KeyInfo& k, std::string_view text, std::string& why) {
    auto out_of_range = [&](std::string_view v) -> std::optional<Value> {
        why = quote(v) + " is out of range (" + bounds_text(k) + ")";
        return std::nullopt;
    };
    auto check_bounds = [&](std::int64_t n) { return !bounded(k) || (n >= k.min && n <= k.max); };
    switch (k.type) {
    case KeyType::integer: {
        auto n = parse_int64(text);
        if (!n) {
            // Digits that do not fit are a range problem, not a syntax one.
            if (!text.empty() && std::all_of(text.begin(), text.end(), [](char c) { return c >= '0' && c <= '9'; }))
                return out_of_range(text);
            why = quote(text) + " is not an integer";
            return std::nullopt;
        }
        if (!check_bounds(*n)) return out_of_range(text);
        return Value(*n);
    }
    case KeyType::octal: {
        std::int64_t n = 0;
        bool ok = !text.empty() && text.size() <= 12 &&
                  std::all_of(text.begin(), text.end(), [](char c) { return c >= '0' && c <= '7'; });
        if (!ok) {
            why = quote(text) + " is not an octal number (e.g. 007, 027)";
            return std::nullopt;
        }
        for (char c : text) n = n * 8 + (c - '0');
        if (!check_bounds(n)) return out_of_range(text);
        return Value(n);
    }
    case KeyType::size: {
        auto n = parse_size(text);
        if (!n) {
            // Digits with a valid suffix that overflow are a range problem, not a syntax one.
            std::string_view digits = text;
            if (!digits.empty() && std::string_view("kKmMgG").find(digits.back()) != std::string_view::npos)
                digits.remove_suffix(1);
            if (!digits.empty() &&
                std::all_of(digits.begin(), digits.end(), [](char c) { return c >= '0' && c <= '9'; }))
                return out_of_range(text);
            why = quote(text) + " is not a size (bytes, or a number followed by K, M or G: 512K, 20M, 1G)";
            return std::nullopt;
        }
        if (*n > static_cast<std::uint64_t>(INT64_MAX) || !check_bounds(static_cast<std::int64_t>(*n)))
            return out_of_range(text);
        return Value(static_cast<std::int64_t>(*n));
    }
    case KeyType::duration: {
        auto d = parse_duration(text, BareNumber::seconds);
        if (!d) {
            why = quote(text) + " is not a duration (a number followed by ms, s, m, h, d or w: 500ms, 5s, 2m)";
            return std::nullopt;
        }
        if (!check_bounds(d->count())) return out_of_range(text);
        return Value(static_cast<std::int64_t>(d->count()));
    }
    default: break;
    }
    why = "not a number type";
    return std::nullopt;
}

// The lists of addresses: single IP addresses, networks, nameservers.
std::optional<Value> parse_address_list(KeyType type, std::string_view text, std::string& why) {
    switch (type) {
    case KeyType::address_list: {
        std::vector<IpAddress> list;
        for (auto item : split_list(text)) {
            auto ip = parse_ip(item);
            if (!ip) {
                std::string detail;
                why = quote(item) +
                      (parse_network(item, &detail) ? " is a network; give single addresses" : " is not an IP address");
                return std::nullopt;
            }
            list.push_back(*ip);
        }
        return Value(std::move(list));
    }
    case KeyType::network_list: {
        std::vector<Network> list;
        for (auto item : split_list(text)) {
            std::string detail;
            auto n = parse_network(item, &detail);
            if (!n) {
                why = quote(item) + " " + detail;
                return std::nullopt;
            }
            list.push_back(*n);
        }
        return Value(std::move(list));
    }
    case KeyType::nameserver_list: {
        std::vector<std::string> list;
        for (auto item : split_list(text)) {
            std::string detail;
            auto ns = normalize_nameserver(item, &detail);
            if (!ns) {
                why = quote(item) + " " + detail;
                return std::nullopt;
            }
            list.push_back(*ns);
        }
        return Value(std::move(list));
    }
    default: break;
    }
    why = "not an address list type";
    return std::nullopt;
}

std::optional<Value> parse_value(const KeyInfo& k, std::string_view text, std::string& why) {
    switch (k.type) {
    case KeyType::string: return Value(std::string(text));
    case KeyType::path:
        if (!text.empty() && text.front() != '/') {
            why = quote(text) + " is not an absolute path";
            return std::nullopt;
        }
        return Value(std::string(text));
    case KeyType::boolean:
        if (auto b = parse_bool(text)) return Value(*b);
        why = quote(text) + " is not a boolean (yes, no, true, false, 1, 0)";
        return std::nullopt;
    case KeyType::integer:
    case KeyType::octal:
    case KeyType::size:
    case KeyType::duration: return parse_number_value(k, text, why);
    case KeyType::enumeration:
        for (std::size_t i = 0; i < k.allowed.size(); ++i)
            if (ascii::iequals(text, k.allowed[i])) return Value(static_cast<std::int64_t>(i));
        why = quote(text) + " is not one of " + join(k.allowed, ", ");
        return std::nullopt;
    case KeyType::socket: {
        std::string detail;
        if (auto s = parse_socket_address(text, &detail)) return Value(std::move(*s));
        why = quote(text) + " " + detail;
        return std::nullopt;
    }
    case KeyType::user: {
        if (text.empty()) return Value(UserGroup{});
        if (auto ug = parse_user_group(text)) return Value(std::move(*ug));
        why = quote(text) + " is not user or user:group";
        return std::nullopt;
    }
    case KeyType::address_list:
    case KeyType::network_list:
    case KeyType::nameserver_list: return parse_address_list(k.type, text, why);
    case KeyType::string_list: {
        std::vector<std::string> list;
        for (auto item : split_list(text)) list.emplace_back(item);
        return Value(std::move(list));
    }
    case KeyType::listen_address: {
        if (text.empty()) return Value(std::string());
        std::string detail;
        if (auto a = parse_listen_address(text, &detail)) return Value(a->to_string());
        why = quote(text) + " " + detail;
        return std::nullopt;
    }
    case KeyType::rate_list: {
        std::string detail;
        if (auto rates = parse_quota_rates(text, &detail)) return Value(std::move(*rates));
        why = detail;
        return std::nullopt;
    }
    case KeyType::base64:
        if (!text.empty() && !decode_base64(text)) {
            why = quote(text) + " is not base64" +
                  (text.find("p=") != std::string_view::npos ? " (give the p= value alone)" : "");
            return std::nullopt;
        }
        return Value(std::string(text));
    }
    why = "unsupported type";
    return std::nullopt;
}

std::optional<Value> parse_row_value(const Row& row, std::string_view text, std::string& why) {
    auto v = parse_value(row.info, text, why);
    if (v && row.refine && !row.refine(*v, why)) return std::nullopt;
    return v;
}

// Case-insensitive Levenshtein distance, or `limit` as soon as it is known to be at least that.
std::size_t edit_distance(std::string_view a, std::string_view b, std::size_t limit) {
    std::vector<std::size_t> prev(b.size() + 1), cur(b.size() + 1);
    for (std::size_t j = 0; j <= b.size(); ++j) prev[j] = j;
    for (std::size_t i = 1; i <= a.size(); ++i) {
        cur[0] = i;
        std::size_t row_min = i;
        for (std::size_t j = 1; j <= b.size(); ++j) {
            std::size_t sub = prev[j - 1] + (ascii::lower(a[i - 1]) == ascii::lower(b[j - 1]) ? 0 : 1);
            cur[j] = std::min({prev[j] + 1, cur[j - 1] + 1, sub});
            row_min = std::min(row_min, cur[j]);
        }
        if (row_min >= limit) return limit;  // no later row can get below this one's minimum
        std::swap(prev, cur);
    }
    return std::min(prev[b.size()], limit);
}

std::string unknown_key_message(std::string_view key) {
    if (auto eq = key.find('='); eq != std::string_view::npos && row_index(key.substr(0, eq)) < std::size(kRows))
        return "unknown key (write the value after a blank, not '=': " +
               std::string(kRows[row_index(key.substr(0, eq))].info.name) + " " + std::string(key.substr(eq + 1)) + ")";
    std::string_view best;
    std::size_t best_d = 3;  // suggest only near misses
    for (const auto& r : kRows) {
        // The distance is at least the difference in length: a long key (a pasted line, a
        // hostile file) costs no quadratic comparison with every key name.
        const std::size_t la = key.size(), lb = r.info.name.size();
        if ((la > lb ? la - lb : lb - la) >= best_d) continue;
        auto d = edit_distance(key, r.info.name, best_d);
        if (d < best_d) best_d = d, best = r.info.name;
    }
    if (best.empty()) return "unknown key";
    return "unknown key (did you mean " + std::string(best) + "?)";
}

struct Defaults {
    GlobalSettings global;
    Settings settings;
};

// Parses every row's default text with the file's own parser. A default that does not parse is
// a defect in the table, caught by the unit tests at the latest.
const Defaults& table_defaults() {
    static const Defaults d = [] {
        Defaults out;
        Target t{out.global, out.settings};
        for (const auto& row : kRows) {
            std::string why;
            auto v = parse_row_value(row, row.info.default_value, why);
            if (!v) {
                std::fprintf(stderr, "preflight: default of %.*s does not parse: %s\n",
                             static_cast<int>(row.info.name.size()), row.info.name.data(), why.c_str());
                std::abort();
            }
            row.store(t, *v);
        }
        return out;
    }();
    return d;
}

// "example.org", "*.example.net" (lower case, no trailing dot), or nullopt with why.
std::optional<std::string> normalize_pattern(std::string_view p, std::string& why) {
    std::string s = ascii::to_lower(p);
    if (!s.empty() && s.back() == '.') s.pop_back();
    bool wildcard = s.starts_with("*.");
    std::string_view domain = wildcard ? std::string_view(s).substr(2) : std::string_view(s);
    if (std::any_of(s.begin(), s.end(), [](char c) { return static_cast<unsigned char>(c) >= 0x80; })) {
        why = quote(p) + " is not ASCII; give the A-label (xn--) form";
        return std::nullopt;
    }
    if (s == "*") {
        why = "\"*\" matches every domain; set the key without a Domain line";
        return std::nullopt;
    }
    if (s.starts_with(".")) {
        why = quote(p) + " is not a domain name (for its subdomains write *" + s + ")";
        return std::nullopt;
    }
    if (!valid_dns_name(domain, 253) || domain.find('*') != std::string_view::npos) {
        why = quote(p) + " is not a domain name or *.domain pattern";
        return std::nullopt;
    }
    return s;
}

}  // namespace

// ---------------------------------------------------------------------------------------------

std::span<const KeyInfo> config_keys() {
    static const std::vector<KeyInfo> keys = [] {
        std::vector<KeyInfo> out;
        for (const auto& r : kRows) out.push_back(r.info);
        return out;
    }();
    return keys;
}

const KeyInfo* find_config_key(std::string_view name) {
    auto i = row_index(name);
    return i < std::size(kRows) ? &config_keys()[i] : nullptr;
}

std::string bounds_text(const KeyInfo& k) {
    if (!bounded(k)) return {};
    switch (k.type) {
    case KeyType::size: return size_text(k.min) + ".." + size_text(k.max);
    case KeyType::duration: return duration_text(k.min) + ".." + duration_text(k.max);
    case KeyType::octal: return (k.min ? octal_text(k.min) : "0") + ".." + octal_text(k.max);
    default: return std::to_string(k.min) + ".." + std::to_string(k.max);
    }
}

const Settings& default_settings() { return table_defaults().settings; }
const GlobalSettings& default_global_settings() { return table_defaults().global; }

std::string ConfigError::to_string() const {
    std::string out = file;
    if (line > 0) out += ":" + std::to_string(line);
    out += ": ";
    if (!key.empty()) out += key + ": ";
    return out + message;
}

// ---------------------------------------------------------------------------------------------

const Settings& Config::for_sender_domain(std::string_view domain) const {
    if (overrides_.empty()) return defaults_;
    if (!domain.empty() && domain.back() == '.') domain.remove_suffix(1);
    char buf[253];
    if (domain.empty() || domain.size() > sizeof buf) return defaults_;
    for (std::size_t i = 0; i < domain.size(); ++i) buf[i] = ascii::lower(domain[i]);
    std::string_view d(buf, domain.size());
    if (auto it = exact_.find(d); it != exact_.end()) return overrides_[it->second];
    if (!wildcard_.empty()) {
        // Parents from the nearest up: the first hit is the most specific wildcard.
        for (auto dot = d.find('.'); dot != std::string_view::npos; dot = d.find('.', dot + 1))
            if (auto it = wildcard_.find(d.substr(dot + 1)); it != wildcard_.end()) return overrides_[it->second];
    }
    return defaults_;
}

bool Config::any_suppression() const {
    auto on = [](const Settings& s) { return s.suppression_mode != SuppressionMode::off; };
    return on(defaults_) || std::any_of(overrides_.begin(), overrides_.end(), on);
}

bool Config::any_quota() const {
    if (defaults_.has_quota()) return true;
    return std::any_of(overrides_.begin(), overrides_.end(), [](const Settings& s) { return s.has_quota(); });
}

namespace detail {

// Collects one file's lines into settings and errors; finish() runs the checks that involve
// several keys and builds the Config.
struct ConfigBuilder {
    struct Given {
        int line = 0;
        std::optional<Value> value;  // unset when the value did not parse
    };
    struct Pattern {
        std::string pattern;  // normalized, "*." kept
        int first_line = 0;
        std::vector<Given> given = std::vector<Given>(std::size(kRows));
    };

    std::string file;
    GlobalSettings global = table_defaults().global;
    Settings settings = table_defaults().settings;
    std::vector<Given> given = std::vector<Given>(std::size(kRows));
    std::vector<Pattern> patterns;
    std::vector<ConfigError> errors;

    explicit ConfigBuilder(std::string_view name) : file(name) {}

    void error(int line, std::string_view key, std::string message) {
        errors.push_back({file, line, std::string(key), std::move(message)});
    }

    // The value after the key: a quoted string, or the text up to a comment.
    // nullopt with why empty: no value; nullopt with why set: a quoting problem.
    static std::optional<std::string> read_value(std::string_view rest, std::string& why) {
        if (rest.empty() || rest.front() == '#') return std::nullopt;
        if (rest.front() == '"') {
            std::string out;
            for (std::size_t i = 1; i < rest.size(); ++i) {
                char c = rest[i];
                if (c == '\\' && i + 1 < rest.size() && (rest[i + 1] == '"' || rest[i + 1] == '\\')) {
                    out += rest[++i];
                } else if (c == '"') {
                    std::string_view after = ascii::trim(rest.substr(i + 1));
                    if (!after.empty() && after.front() != '#') {
                        why = "unexpected text after the closing quote";
                        return std::nullopt;
                    }
                    return out;
                } else {
                    out += c;
                }
            }
            why = "no closing quote";
            return std::nullopt;
        }
        // '#' starts a comment only after a blank, so "a#b" stays a value.
        std::size_t end = rest.size();
        for (std::size_t i = 1; i < rest.size(); ++i)
            if (rest[i] == '#' && ascii::is_hspace(rest[i - 1])) {
                end = i;
                break;
            }
        return std::string(ascii::trim(rest.substr(0, end)));
    }

    // Finds the row for key and reads its value; reports and returns nullptr on any problem.
    const Row* key_and_value(int lineno, std::string_view key, std::string_view rest, std::string& value) {
        auto idx = row_index(key);
        if (idx == std::size(kRows)) {
            error(lineno, key, unknown_key_message(key));
            return nullptr;
        }
        const Row& row = kRows[idx];
        std::string why;
        auto v = read_value(rest, why);
        if (!v) {
            error(lineno, row.info.name, why.empty() ? "missing value" : why);
            return nullptr;
        }
        value = std::move(*v);
        return &row;
    }

    void line(int lineno, std::string_view text) {
        std::string_view rest = text;
        while (!rest.empty() && ascii::is_hspace(rest.front())) rest.remove_prefix(1);
        while (!rest.empty() && (rest.back() == '\r' || ascii::is_hspace(rest.back()))) rest.remove_suffix(1);
        if (rest.empty() || rest.front() == '#') return;
        std::string_view key = next_word(rest);
        if (ascii::iequals(key, "Domain")) return domain_line(lineno, rest);

        std::string value;
        const Row* row = key_and_value(lineno, key, rest, value);
        if (!row) return;
        Given& g = given[static_cast<std::size_t>(row - kRows)];
        if (g.line) {
            error(lineno, row->info.name, "duplicate (first set at line " + std::to_string(g.line) + ")");
            return;
        }
        g.line = lineno;
        std::string why;
        g.value = parse_row_value(*row, value, why);
        if (!g.value) return error(lineno, row->info.name, why);
        Target t{global, settings};
        row->store(t, *g.value);
    }

    void domain_line(int lineno, std::string_view rest) {
        static constexpr std::string_view usage = " (Domain example.org KEY VALUE)";
        std::string_view raw = next_word(rest);
        if (raw.empty() || raw.front() == '#') return error(lineno, "Domain", "missing domain" + std::string(usage));
        std::string why;
        auto pattern = normalize_pattern(raw, why);
        if (!pattern) return error(lineno, "Domain", why);
        std::string_view key = next_word(rest);
        if (key.empty() || key.front() == '#')
            return error(lineno, "Domain", "missing key after " + *pattern + std::string(usage));

        std::string value;
        const Row* row = key_and_value(lineno, key, rest, value);
        if (!row) return;
        if (!row->info.per_domain) {
            std::vector<std::string_view> names;
            for (const auto& r : kRows)
                if (r.info.per_domain) names.push_back(r.info.name);
            return error(lineno, row->info.name,
                         "cannot be set per domain (per-domain keys: " + join(names, ", ") + ")");
        }
        auto it =
            std::find_if(patterns.begin(), patterns.end(), [&](const Pattern& p) { return p.pattern == *pattern; });
        if (it == patterns.end()) {
            patterns.push_back({*pattern, lineno});
            it = std::prev(patterns.end());
        }
        Given& g = it->given[static_cast<std::size_t>(row - kRows)];
        if (g.line)
            return error(lineno, row->info.name,
                         "duplicate for " + *pattern + " (first set at line " + std::to_string(g.line) + ")");
        g.line = lineno;
        g.value = parse_row_value(*row, value, why);
        if (!g.value) return error(lineno, row->info.name, why);
    }

    const Given& global_given(std::string_view name) const { return given[must_row(name)]; }

    // Checks that involve more than one key. Only values that parsed are looked at, so one
    // typo does not cause a second, derived error.
    // Redis credentials with no Redis to give them to are a mistake the operator should see.
    void redis_cross_checks() {
        if (const Given& store = global_given("QuotaStore"); !store.line || store.value)  // else reported already
            credentials_cross_check("QuotaStore", global.quota_store.kind, global.quota_store_credentials,
                                    global.quota_store_sentinel_credentials);
        if (const Given& store = global_given("SuppressionStore"); !store.line || store.value)
            if (std::optional<QuotaStoreSpec> spec = parse_quota_store(global.suppression_store))
                credentials_cross_check("SuppressionStore", spec->kind, global.suppression_store_credentials,
                                        global.suppression_store_sentinel_credentials);
    }

    // STORE's PasswordFile needs a Redis, its SentinelPasswordFile a redis-sentinel://.
    void credentials_cross_check(const std::string& store, QuotaStoreSpec::Kind kind, const RedisCredentials& creds,
                                 const RedisCredentials& sentinel_creds) {
        const std::string key = store + "PasswordFile", sentinel_key = store + "SentinelPasswordFile";
        if (!creds.file.empty() && kind == QuotaStoreSpec::Kind::sqlite)
            error(global_given(key).line, key, "has no effect unless " + store + " is redis:// or redis-sentinel://");
        if (!sentinel_creds.file.empty() && kind != QuotaStoreSpec::Kind::redis_sentinel)
            error(global_given(sentinel_key).line, sentinel_key,
                  "has no effect unless " + store + " is redis-sentinel://");
    }

    void cross_checks() {
        const Given& inline_key = global_given("DkimPublicKey");
        const Given& key_file = global_given("DkimPublicKeyFile");
        auto has_key = [](const Given& g) { return g.value && !std::get<DkimKey>(*g.value).bytes.empty(); };
        if (has_key(inline_key) && has_key(key_file)) {
            bool file_later = key_file.line > inline_key.line;
            error(file_later ? key_file.line : inline_key.line, file_later ? "DkimPublicKeyFile" : "DkimPublicKey",
                  std::string("cannot be used together with ") + (file_later ? "DkimPublicKey" : "DkimPublicKeyFile") +
                      " (line " + std::to_string(file_later ? inline_key.line : key_file.line) + "); keep one");
        }
        // A key whose value did not parse was reported already; do not guess what it would be.
        auto failed = [](const Given& g) { return g.line && !g.value; };
        const Given& selectors = global_given("DkimSelectors");
        bool any_key = has_key(inline_key) || has_key(key_file);
        if (!global.dkim_selectors.empty() && !any_key && !failed(inline_key) && !failed(key_file))
            error(selectors.line, "DkimSelectors",
                  "set, but neither DkimPublicKey nor DkimPublicKeyFile is (the key the selectors should publish)");
        if (any_key && global.dkim_selectors.empty() && !failed(selectors)) {
            bool inline_set = has_key(inline_key);
            error(inline_set ? inline_key.line : key_file.line, inline_set ? "DkimPublicKey" : "DkimPublicKeyFile",
                  "set, but DkimSelectors is empty (where to look for the published key)");
        }

        redis_cross_checks();

        const Given& apply_to = global_given("ApplyTo");
        const Given& networks = global_given("ApplyToNetworks");
        if (global.apply_to == ApplyTo::networks && global.apply_to_networks.empty() && !failed(networks))
            error(apply_to.line, "ApplyTo",
                  "networks needs ApplyToNetworks (the client networks whose mail is checked)");
        if (!global.apply_to_networks.empty() && global.apply_to != ApplyTo::networks && !failed(apply_to))
            error(networks.line, "ApplyToNetworks",
                  "has no effect unless ApplyTo is networks (ApplyTo is " + std::string(to_string(global.apply_to)) +
                      ")");
    }

    // SPF needs the addresses it is evaluated for; without them it could only fail or be skipped.
    void egress_check(const Config& c) {
        const Given& egress = global_given("EgressAddresses");
        if (!global.egress_addresses.empty() || (egress.line && !egress.value)) return;
        auto needs_spf = [](const Settings& s) { return s.auth_mode != CheckMode::off && uses_spf(s.auth_policy); };
        if (needs_spf(c.defaults_)) {
            const Given& policy = global_given("AuthPolicy");
            if (policy.line && !policy.value) return;  // already reported
            error(0, "EgressAddresses",
                  "not set, but AuthPolicy " + std::string(to_string(c.defaults_.auth_policy)) +
                      (policy.line ? " (line " + std::to_string(policy.line) + ")" : " (the default)") +
                      " needs it: SPF is evaluated for the addresses the relay sends from; set it, or AuthPolicy dkim "
                      "or off");
            return;
        }
        for (std::size_t i = 0; i < c.overrides_.size(); ++i)
            if (needs_spf(c.overrides_[i])) {
                error(patterns[i].first_line, "EgressAddresses",
                      "not set, but Domain " + patterns[i].pattern + " has AuthPolicy " +
                          std::string(to_string(c.overrides_[i].auth_policy)) +
                          ", which needs it: SPF is evaluated for the addresses the relay sends from");
                return;
            }
    }

    // Complete settings per pattern: global, then the wildcards above it from the least to the
    // most specific, then its own lines — so "Domain *.example.net AuthPolicy off" still holds
    // for a.example.net when a.example.net has a line of its own.
    void build_overrides(Config& c) const {
        GlobalSettings unused;
        for (const auto& p : patterns) {
            Settings s = c.defaults_;
            s.pattern = p.pattern;
            std::string_view domain = p.pattern;
            if (domain.starts_with("*.")) domain.remove_prefix(2);
            std::vector<const Pattern*> parents;  // nearest first
            for (auto dot = domain.find('.'); dot != std::string_view::npos; dot = domain.find('.', dot + 1)) {
                std::string parent = "*." + std::string(domain.substr(dot + 1));
                for (const auto& q : patterns)
                    if (q.pattern == parent) parents.push_back(&q);
            }
            Target t{unused, s};
            auto apply = [&](const Pattern& q) {
                for (std::size_t r = 0; r < q.given.size(); ++r)
                    if (q.given[r].value) kRows[r].store(t, *q.given[r].value);
            };
            for (auto it = parents.rbegin(); it != parents.rend(); ++it) apply(**it);
            apply(p);
            bool wildcard = p.pattern.starts_with("*.");
            auto& index = wildcard ? c.wildcard_ : c.exact_;
            index.emplace(std::string(domain), c.overrides_.size());
            c.overrides_.push_back(std::move(s));
        }
    }

    ParseResult finish() {
        cross_checks();
        Config c;
        c.file_ = file;
        c.global_ = global;
        c.defaults_ = settings;
        build_overrides(c);
        egress_check(c);
        if (!errors.empty()) {
            std::stable_sort(errors.begin(), errors.end(), [](const ConfigError& a, const ConfigError& b) {
                return (a.line == 0 ? INT32_MAX : a.line) < (b.line == 0 ? INT32_MAX : b.line);
            });
            return {nullptr, std::move(errors)};
        }
        return {std::make_shared<const Config>(std::move(c)), {}};
    }
};

}  // namespace detail

ParseResult parse_config_text(std::string_view name, std::string_view text) {
    detail::ConfigBuilder b(name);
    int lineno = 0;
    std::size_t pos = 0;
    while (pos < text.size()) {
        auto nl = text.find('\n', pos);
        std::string_view line = text.substr(pos, nl == std::string_view::npos ? std::string_view::npos : nl - pos);
        b.line(++lineno, line);
        if (nl == std::string_view::npos) break;
        pos = nl + 1;
    }
    return b.finish();
}

bool apply_policy_key(Settings& s, std::string_view key, std::string_view value, std::string& why,
                      std::string* canonical) {
    const std::size_t idx = row_index(key);
    if (idx == std::size(kRows)) {
        why = unknown_key_message(key);
        return false;
    }
    const Row& row = kRows[idx];
    if (canonical) *canonical = std::string(row.info.name);
    if (!row.info.per_domain) {
        why = "cannot be set per tenant or domain";
        return false;
    }
    std::optional<Value> v = parse_row_value(row, value, why);
    if (!v) return false;
    GlobalSettings unused;
    Target t{unused, s};
    row.store(t, *v);
    return true;
}

ParseResult parse_config_file(const std::string& path) {
    std::ifstream in(path, std::ios::binary);
    if (!in) return {nullptr, {{path, 0, "", std::string("cannot be read: ") + std::strerror(errno)}}};
    std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    if (in.bad()) return {nullptr, {{path, 0, "", std::string("cannot be read: ") + std::strerror(errno)}}};
    return parse_config_text(path, text);
}

}  // namespace preflight
