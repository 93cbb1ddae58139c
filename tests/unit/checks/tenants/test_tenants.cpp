// The tenants file: the line format and its FILE:LINE errors, the lookup (login first, else
// the sender domain), and a tenant's plan through MessageSession with an injected clock: the
// monthly limit, the reply naming limit, usage and renewal, renewal on the billing day, the
// notices at 80 % and 100 %, and a new table (a reload) that keeps the counters.
#include <catch2/catch.hpp>

#include <unistd.h>

#include <chrono>
#include <filesystem>

#include "fake_resolver.hpp"
#include "message_session.hpp"
#include "quota.hpp"
#include "tenants.hpp"

using namespace preflight;

namespace {

std::int64_t utc_ms(int y, unsigned m, unsigned d, int hh = 0) {
    using namespace std::chrono;
    const sys_days day = year_month_day(year(y), month(m), std::chrono::day(d));
    return (static_cast<std::int64_t>(day.time_since_epoch().count()) * 86400 + hh * 3600) * 1000;
}

std::vector<std::string> errors_of(std::string_view text) {
    std::vector<std::string> out;
    for (const ConfigError& e : parse_tenants_text("tenants.conf", text, Settings{}).errors)
        out.push_back(e.to_string());
    return out;
}

struct TempDir {
    std::string path;
    TempDir() {
        std::string tmpl = (std::filesystem::temp_directory_path() / "preflight-tenants-XXXXXX").string();
        REQUIRE(mkdtemp(tmpl.data()) != nullptr);
        path = tmpl;
    }
    ~TempDir() {
        std::error_code ec;
        std::filesystem::remove_all(path, ec);
    }
};

struct TenantFixture {
    TempDir dir;
    FakeResolver dns;
    std::unique_ptr<QuotaStore> store;
    MilterServices services;
    QuotaNotices notices;
    std::int64_t now = utc_ms(2026, 12, 7, 10);

    explicit TenantFixture(const std::string& tenants) {
        dns.set("good.test", rrtype::MX, DnsStatus::ok, {"10 mx.good.test"}, {{10, "mx.good.test"}});
        auto parsed = parse_config_text(
            "t.conf", "EgressAddresses 127.0.0.1\nAuthPolicy off\nQuotaStore sqlite:" + dir.path + "/q.db\n");
        REQUIRE(parsed.ok());
        services.config = parsed.config;
        store = open_quota_store(services.config->global().quota_store, std::chrono::milliseconds(1000));
        services.resolver = &dns;
        services.egress_ips = {"127.0.0.1"};
        services.quota_store = store.get();
        services.now_ms = [this] { return now; };
        services.quota_notices = &notices;
        load(tenants);
    }
    void load(const std::string& tenants) {
        TenantsResult t = parse_tenants_text("tenants.conf", tenants, services.config->defaults());
        REQUIRE(t.table);
        services.tenants = t.table;
    }
    // One message from login acme with n recipients: how many were accepted, and the last refusal.
    std::pair<unsigned, std::string> send(unsigned n, std::string_view login = "acme") {
        MessageSession s(services);
        REQUIRE(s.mail_from("<news@good.test>", {}, login).accepted());
        std::string refusal;
        for (unsigned i = 0; i < n; ++i) {
            Verdict v = s.rcpt_to("<r" + std::to_string(i) + "@example.org>");
            if (!v.accepted()) refusal = reply_text(render(v));
        }
        REQUIRE(s.end_of_message().accepted());
        return {s.accepted_recipients(), refusal};
    }
};

}  // namespace

TEST_CASE("tenants file: KEY=VALUE per tenant over the defaults, looked up by login, else domain", "[tenants]") {
    Settings defaults;
    defaults.max_recipients = 40;
    TenantsResult r = parse_tenants_text("tenants.conf",
                                         "# plans\n"
                                         "acme  QuotaRecipients=50000/month,500/hour MaxRecipients=50 "
                                         "MaxMessageSize=10M BillingDay=15   # bought on the 15th\n"
                                         "\n"
                                         "example.org QuotaRecipients=1000/week QuotaCode=550 AuthMode=tag\n"
                                         "Bob\n",
                                         defaults);
    REQUIRE(r.table);
    CHECK(r.table->size() == 3);
    CHECK(r.table->any_quota());
    const Tenant* acme = r.table->find("acme", "other.test");
    REQUIRE(acme);
    CHECK(acme->settings.quota_recipients ==
          std::vector<QuotaRate>{{50000, QuotaWindow::month}, {500, QuotaWindow::hour}});
    CHECK(acme->settings.max_recipients == 50);
    CHECK(acme->settings.max_message_size == 10u << 20);
    CHECK(acme->settings.billing_day == 15);
    CHECK(acme->line == 2);
    // Without a login: the sender domain, in any case, one trailing dot ignored.
    const Tenant* org = r.table->find("", "Example.ORG.");
    REQUIRE(org);
    CHECK(org->settings.quota_code == 550);
    CHECK(org->settings.auth_mode == CheckMode::tag);
    CHECK(org->settings.max_recipients == 40);  // not set: the default
    // A login that is no tenant does not fall back to the domain: the login is the customer.
    CHECK(r.table->find("mallory", "example.org") == nullptr);
    CHECK(r.table->find("bob", "") == nullptr);  // logins are exact
    CHECK(r.table->find("Bob", "") != nullptr);
}

TEST_CASE("tenants file: every bad line is named with FILE:LINE, key and tenant", "[tenants]") {
    CHECK(errors_of("acme QuotaRecipients=100/fortnight\n") ==
          std::vector<std::string>{"tenants.conf:1: QuotaRecipients: \"100/fortnight\" is not a quota (a number, '/', "
                                   "and minute, hour, day, week or month: 10000/day) (tenant acme)"});
    CHECK(errors_of("a MaxRecipients=5\nb Socket=unix:/x\n") ==
          std::vector<std::string>{"tenants.conf:2: Socket: cannot be set per tenant or domain (tenant b)"});
    CHECK(errors_of("a BillingDay=32\n") ==
          std::vector<std::string>{"tenants.conf:1: BillingDay: \"32\" is out of range (1..31) (tenant a)"});
    CHECK(errors_of("a MaxRecipients=5\n\na MaxRecipients=6\n") ==
          std::vector<std::string>{"tenants.conf:3: tenant a: duplicate (first at line 1)"});
    CHECK(errors_of("a MaxRecipients 5\n") ==
          std::vector<std::string>{
              "tenants.conf:1: tenant a: \"MaxRecipients\" is not KEY=VALUE (e.g. "
              "QuotaRecipients=50000/month)",
              "tenants.conf:1: tenant a: \"5\" is not KEY=VALUE (e.g. QuotaRecipients=50000/month)"});
    CHECK(errors_of("a MaxRecipients=5 maxrecipients=6\n") ==
          std::vector<std::string>{"tenants.conf:1: MaxRecipients: given twice for tenant a"});
    CHECK(errors_of("a Frobnicate=1\n").front().starts_with("tenants.conf:1: Frobnicate: unknown key"));
    CHECK(errors_of("caf\xc3\xa9 MaxRecipients=5\n").front().find("is not a tenant name") != std::string::npos);
    auto unreadable = parse_tenants_file("/nonexistent/tenants.conf", Settings{});
    CHECK_FALSE(unreadable.table);
    CHECK(unreadable.errors.front().to_string() ==
          "/nonexistent/tenants.conf: cannot be read: No such file or directory");
}

TEST_CASE("tenant plan: a monthly limit accepts exactly N, then names limit, usage and renewal", "[tenants][session]") {
    TenantFixture f("acme QuotaRecipients=5/month BillingDay=15\n");
    CHECK(f.send(3).first == 3);
    auto [accepted, refusal] = f.send(4);
    CHECK(accepted == 2);
    CHECK(
        refusal.starts_with("452 4.7.1 Monthly plan limit of 5 recipients reached for tenant acme (5 used); it "
                            "renews on 2026-12-15 00:00 UTC; upgrade the plan or wait"));
    CHECK(f.notices.count_of(80, QuotaWindow::month) == 1);  // the 4th recipient: 4 of 5
    CHECK(f.notices.count_of(100, QuotaWindow::month) == 1);
    // /metrics: one series per (share, window) seen, none per tenant.
    metrics::Registry registry;
    f.notices.register_with(registry);
    const std::string text = registry.render();
    CHECK(text.find("preflight_quota_notices_total{share=\"80\",window=\"month\"} 1\n") != std::string::npos);
    CHECK(text.find("preflight_quota_notices_total{share=\"100\",window=\"month\"} 1\n") != std::string::npos);
    CHECK(text.find("acme") == std::string::npos);
    // Another login is another tenant, or none: unaffected.
    CHECK(f.send(2, "other").first == 2);
    // One second before the billing day: still refused; on it: a new period.
    f.now = utc_ms(2026, 12, 15) - 1000;
    CHECK(f.send(1).first == 0);
    f.now = utc_ms(2026, 12, 15);
    CHECK(f.send(5).first == 5);
    CHECK(f.send(1).second.find("renews on 2027-01-15 00:00 UTC") != std::string::npos);
}

TEST_CASE("tenant plan: a new table (reload) keeps the counters and applies its limits at once", "[tenants][session]") {
    TenantFixture f("acme QuotaRecipients=5/month QuotaCode=550\n");
    CHECK(f.send(4).first == 4);
    f.load("acme QuotaRecipients=6/month QuotaCode=550\n");
    auto [accepted, refusal] = f.send(3);
    CHECK(accepted == 2);
    CHECK(refusal.starts_with("550 5.7.1 Monthly plan limit of 6 recipients reached for tenant acme (6 used)"));
    f.load("acme QuotaRecipients=10/month MaxRecipients=2\n");
    CHECK(f.send(3).first == 2);  // MaxRecipients of the new plan; 8 of 10 used now
}
