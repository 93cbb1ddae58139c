// preflight.conf: "Key Value" lines like opendkim.conf. One table of keys (name, type, default,
// bounds or allowed values, whether a Domain line may override it, one line of help) drives the
// parser, the -n check and every error message; man/preflight.conf.5 and conf/preflight.conf
// document the same list and a unit test keeps all three in step.
//
// Inputs: a file (or text, for tests). Output: an immutable Config shared as
// shared_ptr<const Config> (SIGHUP: parse a new one, swap the pointer), or every problem found,
// each as "FILE:LINE: KEY: why". Per-sender-domain overrides ("Domain example.org MaxRecipients
// 200") are merged into complete Settings at load, so a lookup per message is a hash probe or
// two and never merges anything.
#pragma once

#include <array>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

struct sockaddr;

#include "duration.hpp"
#include "socket_address.hpp"

namespace preflight {

// ---------------------------------------------------------------------------------------------
// Value types of the conf, each with its parser (also usable on their own, e.g. by the milter
// to turn libmilter's client address into an IpAddress).

struct IpAddress {
    bool v6 = false;
    std::array<std::uint8_t, 16> bytes{};  // network order; IPv4 uses the first 4

    std::string to_string() const;
    bool operator==(const IpAddress&) const = default;
};

// "192.0.2.1" or "2001:db8::1" (no brackets, no port, no zone).
std::optional<IpAddress> parse_ip(std::string_view text);
// AF_INET or AF_INET6; an IPv4-mapped IPv6 address (::ffff:192.0.2.1, as dual-stack listeners
// report IPv4 clients) comes back as IPv4 so that IPv4 networks match it.
std::optional<IpAddress> ip_from_sockaddr(const sockaddr* sa);

// An address with a prefix length; host bits are always zero.
struct Network {
    IpAddress address;
    int prefix = 0;

    bool contains(const IpAddress& a) const;
    std::string to_string() const;  // "192.0.2.0/24", or "192.0.2.1" for a /32
    bool operator==(const Network&) const = default;
};

// "192.0.2.0/24", "2001:db8::/32" or a single address (/32, /128). A network with host bits
// set ("192.0.2.1/24") is refused: it is nearly always a typo for a single address or a network.
std::optional<Network> parse_network(std::string_view text, std::string* why = nullptr);
bool contains(const std::vector<Network>& networks, const IpAddress& a);

// A nameserver as "ip:port" ("192.0.2.53:53", "[2001:db8::53]:5353"), the form LdnsResolver
// takes, from "192.0.2.53", "192.0.2.53:5353", "2001:db8::53" or "[2001:db8::53]:5353".
// Host names are refused: resolving the resolver would need a resolver.
std::optional<std::string> normalize_nameserver(std::string_view text, std::string* why = nullptr);

// Sizes: plain bytes or a number with K, M or G, binary multiples (1M = 1048576 bytes).
std::optional<std::uint64_t> parse_size(std::string_view text);
// Durations: parse_duration(text, BareNumber::seconds) of duration.hpp.
// yes/no, true/false, 1/0, any case.
std::optional<bool> parse_bool(std::string_view text);
// Standard base64; whitespace is ignored and padding is optional.
std::optional<std::vector<std::uint8_t>> decode_base64(std::string_view text);

// ---------------------------------------------------------------------------------------------
// Closed vocabularies. The conf spells each value as its to_string().

enum class RunMode {
    enforce,  // replies as the checks decide
    dry_run,  // "dry-run": logs what would have happened, accepts everything
};

enum class CheckMode {
    reject,    // the check's reply (5xx; DNS trouble is always 4xx)
    tempfail,  // the 4xx counterpart of the check's reply, so the sender retries
    tag,       // accept, add an X-Preflight-<Check> header saying what failed
    off,       // the check does not run
};

enum class RecipientLimitReply {
    tempfail,  // 452 4.5.3: RFC 5321 says the client sends the rest in another transaction
    reject,    // 550 5.5.3
};

enum class AuthPolicy { spf_or_dkim, spf_and_dkim, spf, dkim, off };

// For which of the relay's EgressAddresses the sender domain's SPF must give pass.
enum class SpfEgressMatch {
    all,  // every one: the relay may send a message from any of them, and a message sent from
          // one the record leaves out fails SPF downstream (by chance, per connection)
    any,  // at least one: lenient, for pools where the others are a fallback only
};

enum class DnsErrorAction {
    tempfail,  // 451 4.4.3
    accept,    // let the message through, as if the check had passed
};

enum class ApplyTo {
    all,            // every message
    authenticated,  // only SASL-authenticated clients
    networks,       // only clients in ApplyToNetworks
};

// Sending quotas (checks/quota.hpp): whose usage a quota counts.
enum class QuotaPer {
    domain,  // the sender domain (all of its senders together)
    sender,  // the envelope sender address
    login,   // the SASL login ({auth_authen}); the sender address when there is none
};

enum class QuotaStoreErrorAction {
    tempfail,  // 451 4.3.0: the store cannot be reached, the sender retries
    accept,    // send without counting (unlimited while the store is down)
};

// week and month are plan periods that renew (checks/quota/plan_period.hpp), not sliding.
enum class QuotaWindow { minute, hour, day, week, month };

// "10000/day": at most `limit` in any window of that length (sliding; see checks/quota.hpp).
struct QuotaRate {
    std::uint32_t limit = 0;
    QuotaWindow window = QuotaWindow::day;
    bool operator==(const QuotaRate&) const = default;
};

// "10000/day", "100/minute, 5000/hour" (commas and/or blanks; each window at most once);
// "" or "none": no quota. Limits 1..1000000000.
std::optional<std::vector<QuotaRate>> parse_quota_rates(std::string_view text, std::string* why = nullptr);
std::string to_string(const std::vector<QuotaRate>& rates);  // "100/minute, 5000/hour"; "none"
std::int64_t window_seconds(QuotaWindow w);                  // 60, 3600, 86400

// One Redis or Sentinel node: an address literal (no brackets) or a host name, and a port.
struct RedisNode {
    std::string host;
    std::uint16_t port = 6379;
    bool operator==(const RedisNode&) const = default;
};

// Where quota counters live: "sqlite:/var/lib/preflight/quota.db" (one relay; survives a
// restart), "redis://HOST[:PORT][/DB]" (shared by the relays of a cluster) or
// "redis-sentinel://HOST[:PORT][,HOST[:PORT]...]/MASTER[/DB]" (the master the Sentinels name,
// sentinel port 26379 by default). No password on this line: QuotaStorePasswordFile.
struct QuotaStoreSpec {
    enum class Kind { sqlite, redis, redis_sentinel };
    Kind kind = Kind::sqlite;
    std::string path;  // sqlite
    std::string host;  // redis: address literal (no brackets) or host name
    std::uint16_t port = 6379;
    int db = 0;
    std::vector<RedisNode> sentinels;  // redis_sentinel, in the order given
    std::string master_name;           // redis_sentinel

    std::string to_string() const;
    bool operator==(const QuotaStoreSpec&) const = default;
};
// password_key: the key a password found in the URL is sent to (the store's *PasswordFile).
std::optional<QuotaStoreSpec> parse_quota_store(std::string_view text, std::string* why = nullptr,
                                                std::string_view password_key = "QuotaStorePasswordFile");

// Credentials for Redis (QuotaStorePasswordFile, QuotaStoreSentinelPasswordFile,
// SuppressionStorePasswordFile, SuppressionStoreSentinelPasswordFile), read from a
// file when the conf is loaded, so `-n` checks them and a reload reads them again. The file holds
// one line, "USER:PASSWORD" (a Redis 6 ACL user: AUTH USER PASSWORD) or "PASSWORD" (requirepass:
// AUTH PASSWORD); a password with ':' in it is written "default:PASSWORD". It must be a regular
// file that other users cannot read (no o+r, o+w).
struct RedisCredentials {
    std::string file;  // "" when none is configured
    std::string user;  // "" for the password alone
    std::string password;
    bool operator==(const RedisCredentials&) const = default;
};
std::optional<RedisCredentials> read_redis_credentials(const std::string& path, std::string* why = nullptr);

// Suppression (checks/suppression/suppression.hpp): what a suppressed recipient gets at RCPT TO.
enum class SuppressionMode {
    reject,   // refused with the reason (550 5.1.1 or 5.7.1), the other recipients go on
    tag,      // accepted, X-Preflight-Suppression says why it would have been refused
    off,      // not looked up
    dry_run,  // "dry-run": looked up and logged, accepted
};
// Whose list a recorded failure goes to.
enum class SuppressionScope {
    domain,  // the sender domain's: other sender domains may still send to the address
    global,  // every sender's
};
enum class SuppressionStoreErrorAction {
    tempfail,  // 451 4.3.0: the sender retries once the store answers
    accept,    // let the recipient through unchecked
};

enum class LogFacility { mail, daemon, local0, local1, local2, local3, local4, local5, local6, local7 };

std::string_view to_string(RunMode v);
std::string_view to_string(CheckMode v);
std::string_view to_string(RecipientLimitReply v);
std::string_view to_string(AuthPolicy v);
std::string_view to_string(SpfEgressMatch v);
std::string_view to_string(DnsErrorAction v);
std::string_view to_string(ApplyTo v);
std::string_view to_string(LogFacility v);
std::string_view to_string(QuotaPer v);
std::string_view to_string(QuotaStoreErrorAction v);
std::string_view to_string(QuotaWindow v);
std::string_view to_string(SuppressionMode v);
std::string_view to_string(SuppressionScope v);
std::string_view to_string(SuppressionStoreErrorAction v);
int to_syslog_facility(LogFacility v);  // LOG_MAIL, LOG_LOCAL0, ...

constexpr bool uses_spf(AuthPolicy p) {
    return p == AuthPolicy::spf_or_dkim || p == AuthPolicy::spf_and_dkim || p == AuthPolicy::spf;
}
constexpr bool uses_dkim(AuthPolicy p) {
    return p == AuthPolicy::spf_or_dkim || p == AuthPolicy::spf_and_dkim || p == AuthPolicy::dkim;
}

// ---------------------------------------------------------------------------------------------
// Settings: the keys a Domain line may override; what the checks read per message.
// The in-class defaults mirror the key table (a unit test pins them equal), so Settings{} is
// the default policy in other units' tests too.
struct Settings {
    std::string pattern;  // "" for the global settings, else the Domain pattern ("*.example.net")

    RunMode mode = RunMode::enforce;
    CheckMode envelope_syntax_mode = CheckMode::reject;
    CheckMode size_mode = CheckMode::reject;
    CheckMode sender_domain_mode = CheckMode::reject;
    CheckMode recipient_limit_mode = CheckMode::reject;
    CheckMode auth_mode = CheckMode::reject;
    std::uint32_t max_recipients = 50;
    RecipientLimitReply recipient_limit_reply = RecipientLimitReply::tempfail;
    std::uint64_t max_message_size = 20ull << 20;
    int unknown_domain_code = 550;  // 450 or 550
    AuthPolicy auth_policy = AuthPolicy::spf_or_dkim;
    SpfEgressMatch spf_egress_match = SpfEgressMatch::all;
    // Sending quotas: empty lists mean no quota.
    QuotaPer quota_per = QuotaPer::domain;
    std::vector<QuotaRate> quota_recipients;
    std::vector<QuotaRate> quota_messages;
    CheckMode quota_mode = CheckMode::reject;
    int quota_code = 452;  // 452 (4.7.1) or 550 (5.7.1)
    // Suppression: refusing recipients that bounced or complained (checks/suppression/).
    SuppressionMode suppression_mode = SuppressionMode::off;
    SuppressionScope suppression_scope = SuppressionScope::domain;
    std::chrono::milliseconds suppression_expiry{180ll * 86'400'000};
    std::chrono::milliseconds suppression_complaint_expiry{730ll * 86'400'000};
    std::uint32_t suppression_quota_failures = 3;
    std::chrono::milliseconds suppression_quota_period{7ll * 86'400'000};
    bool suppress_complaints = true;
    // Message checks at end of message (checks/message/): the bulk-sender requirements. Off by
    // default: turning one on changes which messages a running relay refuses.
    CheckMode dmarc_mode = CheckMode::off;          // the From domain publishes a DMARC record
    CheckMode alignment_mode = CheckMode::off;      // From aligns with SPF's or a DKIM signature's domain
    CheckMode unsubscribe_mode = CheckMode::off;    // bulk mail has RFC 8058 one-click unsubscribe
    CheckMode header_sanity_mode = CheckMode::off;  // RFC 5322 header sanity
    bool bulk = false;                              // every message of the domain is bulk mail

    bool any_message_check() const {
        return dmarc_mode != CheckMode::off || alignment_mode != CheckMode::off || unsubscribe_mode != CheckMode::off ||
               header_sanity_mode != CheckMode::off;
    }
    int billing_day = 1;  // the day of the month a /month plan period renews on (1..31)
    // Recipient domains that cannot receive (NXDOMAIN, null MX), at RCPT TO.
    CheckMode recipient_domain_mode = CheckMode::off;

    bool has_quota() const {
        return quota_mode != CheckMode::off && (!quota_recipients.empty() || !quota_messages.empty());
    }
    bool operator==(const Settings&) const = default;
};

// The keys that hold for the whole milter. In-class defaults mirror the table, as for Settings.
struct GlobalSettings {
    SocketAddress socket{SocketAddress::Kind::unix_socket, "/run/preflight-milter/milter.sock", "", 0};
    std::string user;          // "": keep the user the milter was started as
    std::string group;         // "": the user's primary group
    bool run_as_root = false;  // keep running as root when no UserID is set
    std::string pid_file;      // "": none
    unsigned umask = 0117;     // sockets 0660: owner and group read and write, nothing else
    bool syslog = true;
    LogFacility log_facility = LogFacility::mail;
    std::string metrics_listen;  // "127.0.0.1:9465" or "[::1]:9465" (normalised); "": no metrics

    std::vector<std::string> nameservers;  // "ip:port" each; empty: the system resolver (/etc/resolv.conf)
    std::chrono::milliseconds dns_timeout{5000};
    std::uint32_t dns_cache_size = 10000;
    DnsErrorAction on_dns_error = DnsErrorAction::tempfail;

    ApplyTo apply_to = ApplyTo::all;
    std::vector<Network> apply_to_networks;

    std::vector<IpAddress> egress_addresses;  // SPF is evaluated for each of these
    // How often the egress addresses' forward-confirmed reverse DNS is checked (also at start
    // and on reload).
    std::chrono::milliseconds egress_rdns_interval{3'600'000};
    std::vector<std::string> dkim_selectors;  // lower case
    // Our DKIM public key as DNS publishes it (the decoded p= value), from DkimPublicKey or
    // DkimPublicKeyFile; empty: none. dkim_public_key_base64 is the same without whitespace.
    std::vector<std::uint8_t> dkim_public_key;
    std::string dkim_public_key_base64;
    std::string dkim_public_key_file;  // where it came from, for log lines; "" when given inline

    std::string plan_time_zone = "UTC";  // plan periods renew at local midnight of this zone
    std::string tenants_file;            // "": no tenants (checks/tenants/tenants.hpp)
    // Shares of a quota whose crossing is logged and counted, ascending; 0 ends the list.
    std::array<std::uint8_t, 8> quota_notice_percent{80, 100};
    // Suppression (checks/suppression/). The store as its conf text, checked by parse_quota_store()
    // at load: a second QuotaStoreSpec member makes GCC 12 warn (maybe-uninitialized, a false
    // positive) wherever a GlobalSettings{} temporary is compared.
    std::string suppression_store = "sqlite:/var/lib/preflight/suppression.db";
    std::chrono::milliseconds suppression_store_timeout{250};
    RedisCredentials suppression_store_credentials;           // SuppressionStorePasswordFile
    RedisCredentials suppression_store_sentinel_credentials;  // SuppressionStoreSentinelPasswordFile
    SuppressionStoreErrorAction on_suppression_store_error = SuppressionStoreErrorAction::tempfail;
    std::string suppression_trace_key_file;  // "": no trace header
    QuotaStoreSpec quota_store{QuotaStoreSpec::Kind::sqlite, "/var/lib/preflight/quota.db", "", 6379, 0, {}, {}};
    std::chrono::milliseconds quota_store_timeout{1000};
    QuotaStoreErrorAction on_quota_store_error = QuotaStoreErrorAction::tempfail;
    RedisCredentials quota_store_credentials;           // QuotaStorePasswordFile
    RedisCredentials quota_store_sentinel_credentials;  // QuotaStoreSentinelPasswordFile

    bool operator==(const GlobalSettings&) const = default;
};

// The table's defaults, parsed from the table's default texts (equal to Settings{} and
// GlobalSettings{}).
const Settings& default_settings();
const GlobalSettings& default_global_settings();

// ---------------------------------------------------------------------------------------------
// The key table, for documentation and tests; parsing uses it internally.

enum class KeyType {
    string,
    path,  // absolute
    boolean,
    integer,      // bounds in min..max
    octal,        // bounds in min..max
    size,         // bounds in bytes
    duration,     // bounds in milliseconds
    enumeration,  // one of allowed
    socket,
    user,          // user[:group]
    address_list,  // single IPv4/IPv6 addresses
    network_list,  // addresses and CIDR networks
    nameserver_list,
    string_list,
    base64,
    listen_address,  // ip:port or [ipv6]:port, an address literal
    rate_list,       // "10000/day, 100/minute"
};

struct KeyInfo {
    std::string_view name{};
    KeyType type = KeyType::string;
    std::string_view default_value{};             // as written in a conf; "" means none
    std::int64_t min = 0, max = 0;                // both 0: unbounded
    std::span<const std::string_view> allowed{};  // enumeration values, in enum order
    bool per_domain = false;                      // may be set on a Domain line
    std::string_view help{};
};

std::span<const KeyInfo> config_keys();
const KeyInfo* find_config_key(std::string_view name);  // case-insensitive; nullptr if unknown
std::string_view to_string(KeyType t);                  // "integer", "address-list", ... (as the man page)
std::string bounds_text(const KeyInfo& k);              // "1..100000", "1K..100G", "100ms..60s"; "" if none

// ---------------------------------------------------------------------------------------------

struct ConfigError {
    std::string file;
    int line = 0;     // 0: about the file as a whole (unreadable, a required key missing)
    std::string key;  // canonical spelling when the key is known; "" when there is none
    std::string message;

    // "FILE:LINE: KEY: message", leaving out LINE when 0 and KEY when empty.
    std::string to_string() const;
    bool operator==(const ConfigError&) const = default;
};

namespace detail {
struct ConfigBuilder;
// Heterogeneous lookup, so a string_view of the sender domain needs no std::string.
struct StringHash {
    using is_transparent = void;
    std::size_t operator()(std::string_view s) const { return std::hash<std::string_view>{}(s); }
};
}  // namespace detail

class Config {
public:
    const std::string& file() const { return file_; }
    const GlobalSettings& global() const { return global_; }
    // The settings for a sender domain with no Domain line.
    const Settings& defaults() const { return defaults_; }

    // Effective settings for a sender domain: an exact Domain line, else the most specific
    // "*.parent" line (a.b.example.net: *.b.example.net before *.example.net), else
    // defaults(). Case-insensitive, one trailing dot ignored. Wildcards match subdomains only,
    // not the parent itself. Allocation-free; the reference lives as long as the Config.
    const Settings& for_sender_domain(std::string_view domain) const;

    // One complete Settings per Domain pattern, in order of first appearance. Lets the milter
    // see whether any domain needs a stage before negotiating it away.
    const std::vector<Settings>& overrides() const { return overrides_; }
    // Whether the defaults or some Domain line set a quota (the store is opened only then).
    bool any_quota() const;
    // Whether the defaults or some Domain line look recipients up in the suppression store.
    bool any_suppression() const;

private:
    friend struct detail::ConfigBuilder;
    Config() = default;

    std::string file_;
    GlobalSettings global_;
    Settings defaults_;
    std::vector<Settings> overrides_;
    std::unordered_map<std::string, std::size_t, detail::StringHash, std::equal_to<>> exact_;
    std::unordered_map<std::string, std::size_t, detail::StringHash, std::equal_to<>> wildcard_;  // key: parent
};

// config is set exactly when errors is empty.
struct ParseResult {
    std::shared_ptr<const Config> config;
    std::vector<ConfigError> errors;  // sorted by line; whole-file errors last

    bool ok() const { return config != nullptr; }
};

// Reads and parses a conf file; an unreadable file is one error with line 0.
ParseResult parse_config_file(const std::string& path);
// Parses conf text; name is the FILE in errors and Config::file().
ParseResult parse_config_text(std::string_view name, std::string_view text);

// Sets one key a Domain line may set on s, from its conf text, as a Domain line would (for
// files that give per-subject settings, such as the tenants file). False with why set on an
// unknown key, a key that cannot be set per domain, or a bad value; canonical gets the key's
// table spelling when it is known.
bool apply_policy_key(Settings& s, std::string_view key, std::string_view value, std::string& why,
                      std::string* canonical = nullptr);

}  // namespace preflight
