// preflight-milter's decision logic (MessageSession) fed a whole transaction, as the libmilter
// glue (milter/preflight_milter.cpp) hands it over, over a fake resolver: no MTA, no network.
//
// Input: byte 0 picks one of the configurations below; the rest is cut at NUL bytes into
//   MAIL FROM path | ESMTP args (blank-separated) | RCPT paths (LF-separated) |
//   header block (LF-separated "Name:value" lines; a line starting with a blank continues the
//   previous field, joined by CRLF as libmilter delivers folded fields) | body chunk | ...
// Missing pieces are empty. As the MTA does: a refused MAIL FROM ends the transaction, refused
// recipients are left out, no accepted recipient means no DATA.
//
// Invariants: every verdict renders to a reply libmilter and RFC 5321 accept (a refusal is 4xx
// or 5xx, at most 32 lines, each printable ASCII and short, '%' doubled); tag headers are
// printable and folded with LF TAB; a refusal in the body is repeated at end of message.
#include <array>
#include <string>
#include <vector>

#include "../unit/fake_resolver.hpp"
#include "fuzz_common.hpp"
#include "message_session.hpp"

// ldns/common.h defines bool, true and false unless stdbool.h came first.
#include <stdbool.h>
#include <ldns/ldns.h>

using namespace preflight;

namespace {

// A 1024-bit RSA key generated for this target; the private half signed the DKIM seeds in
// tests/fuzz/corpus/fuzz_milter (with tests/integration/dkim_sign.py, selector fz, good.test).
constexpr std::string_view kDkimPublicKey =
    "MIGfMA0GCSqGSIb3DQEBAQUAA4GNADCBiQKBgQCWfrYbL5GyRFd+QqmbA0WrN2JgClqH1KzKSRsyeLoTExQ5rhJOkfNxuFiuobWjnlvr5AgxA7s8sQ5j/ZOsxjFrmteyS4wZo1ZnrVHhifmdG/Y7T0Lxic8jvS4c16bEGotlrVeM7RVRD0MMg4Kck0DyNu7CcTX6zwHtZiR9mW2y1QIDAQAB";

// A TXT answer in wire form, as libopendkim parses it (strings of at most 255 bytes).
std::vector<std::uint8_t> txt_wire(const std::string& name, std::string_view text) {
    std::string rr = name + ". 300 IN TXT";
    for (std::size_t i = 0; i < text.size(); i += 255) rr.append(" \"").append(text.substr(i, 255)).append("\"");
    ldns_rr* r = nullptr;
    if (ldns_rr_new_frm_str(&r, rr.c_str(), 0, nullptr, nullptr) != LDNS_STATUS_OK) fuzz::fail("ldns_rr_new_frm_str");
    ldns_pkt* p =
        ldns_pkt_query_new(ldns_dname_new_frm_str((name + ".").c_str()), LDNS_RR_TYPE_TXT, LDNS_RR_CLASS_IN, LDNS_RD);
    ldns_pkt_set_qr(p, true);
    ldns_pkt_set_ra(p, true);
    ldns_pkt_push_rr(p, LDNS_SECTION_ANSWER, r);
    std::uint8_t* wire = nullptr;
    std::size_t n = 0;
    if (ldns_pkt2wire(&wire, p, &n) != LDNS_STATUS_OK) fuzz::fail("ldns_pkt2wire");
    std::vector<std::uint8_t> out(wire, wire + n);
    LDNS_FREE(wire);
    ldns_pkt_free(p);
    return out;
}

struct World {
    FakeResolver dns;
    std::vector<MilterServices> services;

    World() {
        using S = DnsStatus;
        dns.set("good.test", rrtype::MX, S::ok, {"10 mx.good.test"}, {{10, "mx.good.test"}});
        dns.set("good.test", rrtype::TXT, S::ok, {"v=spf1 ip4:127.0.0.0/8 ip6:::1 -all"});
        dns.set("nullmx.test", rrtype::MX, S::ok, {"0 "}, {{0, ""}});
        dns.set("nospf.test", rrtype::MX, S::ok, {"10 mx.nospf.test"}, {{10, "mx.nospf.test"}});
        dns.set("nospf.test", rrtype::TXT, S::ok);
        dns.set("softfail.test", rrtype::MX, S::ok, {"10 mx.softfail.test"}, {{10, "mx.softfail.test"}});
        dns.set("softfail.test", rrtype::TXT, S::ok, {"v=spf1 include:good.test redirect=nospf.test ~all"});
        dns.set("servfail.test", rrtype::MX, S::servfail);
        dns.set("timeout.test", rrtype::MX, S::timeout);
        dns.set("dry.test", rrtype::MX, S::ok, {"10 mx.dry.test"}, {{10, "mx.dry.test"}});
        dns.set("tag.test", rrtype::MX, S::ok, {"10 mx.tag.test"}, {{10, "mx.tag.test"}});
        const std::string key = "v=DKIM1; k=rsa; p=" + std::string(kDkimPublicKey);
        dns.set("fz._domainkey.good.test", rrtype::TXT, S::ok, {key});
        dns.answers[{"fz._domainkey.good.test", rrtype::TXT}].wire = txt_wire("fz._domainkey.good.test", key);
        dns.set("_dmarc.good.test", rrtype::TXT, S::ok, {"v=DMARC1; p=reject; adkim=s"});
        dns.set("_dmarc.nospf.test", rrtype::TXT, S::ok, {"v=DMARC1; p=quarantine", "v=DMARC1; p=none"});
        dns.set("_dmarc.servfail.test", rrtype::TXT, S::servfail);
        dns.set("fz._domainkey.nospf.test", rrtype::TXT, S::ok, {key});
        dns.answers[{"fz._domainkey.nospf.test", rrtype::TXT}].wire = txt_wire("fz._domainkey.nospf.test", key);

        const std::string common =
            "EgressAddresses 127.0.0.1, ::1\nDomain dry.test Mode dry-run\n"
            "Domain tag.test AuthMode tag\nDomain *.test MaxRecipients 3\n";
        const std::string dkim = "DkimSelectors fz, other\nDkimPublicKey " + std::string(kDkimPublicKey) + "\n";
        const std::array<std::string, 5> confs = {
            common + "AuthPolicy spf\n",
            common + dkim + "AuthPolicy spf-or-dkim\nMaxMessageSize 2K\n",
            common + dkim + "AuthPolicy dkim\nSizeMode tag\nMaxMessageSize 1K\nRecipientLimitReply reject\n",
            common + dkim +
                "AuthPolicy spf-and-dkim\nAuthMode tempfail\nSenderDomainMode tag\n"
                "EnvelopeSyntaxMode tag\nRecipientLimitMode tag\nUnknownDomainCode 450\n"
                "HeaderSanityMode tag\nDmarcMode tag\nAlignmentMode tag\nUnsubscribeMode tag\nBulk yes\n",
            common + "Mode dry-run\nAuthPolicy spf-or-dkim\nOnDnsError accept\nSizeMode tempfail\nMaxMessageSize 1K\n"
                     "HeaderSanityMode reject\nDmarcMode reject\nAlignmentMode reject\nUnsubscribeMode reject\n",
        };
        for (const std::string& text : confs) {
            ParseResult r = parse_config_text("fuzz.conf", text);
            if (!r.ok()) {
                std::fprintf(stderr, "%s\n", r.errors.front().to_string().c_str());
                fuzz::fail("fuzz configuration does not parse");
            }
            MilterServices s;
            s.config = r.config;
            s.resolver = &dns;
            s.egress_ips = {"127.0.0.1", "::1"};
            services.push_back(std::move(s));
        }
    }
};

bool printable(std::string_view s) {
    for (unsigned char c : s)
        if (c < 0x20 || c > 0x7e) return false;
    return true;
}

// FUZZ_MILTER_DEBUG=1: print each verdict's reply (to follow what one input does).
const bool debug = std::getenv("FUZZ_MILTER_DEBUG") != nullptr;

// What the glue does with a verdict: render it (refusals) and check the reply is sendable.
void check_verdict(const Verdict& v) {
    SmtpReply r = render(v);
    if (debug)
        std::fprintf(stderr, "check=%s action=%s reply=%s\n", v.check.c_str(), std::string(to_string(v.action)).c_str(),
                     reply_text(r).c_str());
    if (v.action == Verdict::Action::reject) FUZZ_CHECK(r.code >= 500 && r.code <= 599);
    if (v.action == Verdict::Action::tempfail) FUZZ_CHECK(r.code >= 400 && r.code <= 499);
    FUZZ_CHECK(r.code >= 200 && r.code <= 599);
    // Every placeholder the reply needs has a value (no "Mail from  is not signed"); only the
    // address may be empty, when the client sent an empty path.
    if (v.reply != ReplyId::none) {
        std::vector<std::string> missing = missing_args(v);
        std::erase(missing, "address");
        if (!missing.empty()) {
            std::fprintf(stderr, "reply %s lacks %s\n", reply_text(r).c_str(), missing.front().c_str());
            fuzz::fail("a reply placeholder has no value");
        }
    }
    FUZZ_CHECK(r.lines.size() <= max_reply_lines);
    FUZZ_CHECK(printable(r.enhanced));
    for (const std::string& l : r.lines) {
        FUZZ_CHECK(printable(l));
        FUZZ_CHECK(l.size() <= 980);  // libmilter's line limit, after '%' doubling
        std::size_t pct = 0;          // the length of the current run of '%': always even
        for (char c : l) {
            if (c == '%') {
                ++pct;
                continue;
            }
            FUZZ_CHECK(pct % 2 == 0);
            pct = 0;
        }
        FUZZ_CHECK(pct % 2 == 0);
    }
    std::string text = reply_text(r);
    FUZZ_CHECK(printable(text));
}

void check_notes(MessageSession& s) {
    for (const Verdict& n : s.take_notes()) {
        FUZZ_CHECK(n.accepted());
        check_verdict(n);
    }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    static World world;
    if (size < 1) return 0;
    const MilterServices& services = world.services[data[0] % world.services.size()];
    fuzz::Splitter pieces(fuzz::as_view(data + 1, size - 1), '\0');

    MessageSession s(services);
    const std::string_view path = pieces.next();
    std::vector<std::string_view> args;
    fuzz::Splitter words(pieces.next(), ' ');
    while (!words.done())
        if (std::string_view w = words.next(); !w.empty()) args.push_back(w);
    Verdict v = s.mail_from(path, args);
    check_verdict(v);
    check_notes(s);
    if (!v.accepted()) return 0;

    fuzz::Splitter rcpts(pieces.next(), '\n');
    unsigned accepted = 0;
    while (!rcpts.done()) {
        v = s.rcpt_to(rcpts.next());
        check_verdict(v);
        check_notes(s);
        if (v.accepted()) ++accepted;
    }
    FUZZ_CHECK(s.accepted_recipients() == accepted);
    if (accepted == 0) return 0;

    // Headers: unfolded back into fields, as libmilter hands them over.
    std::vector<std::pair<std::string_view, std::string>> fields;
    fuzz::Splitter lines(pieces.next(), '\n');
    while (!lines.done()) {
        std::string_view l = lines.next();
        if (!fields.empty() && !l.empty() && (l[0] == ' ' || l[0] == '\t')) {
            fields.back().second.append("\r\n").append(l);
            continue;
        }
        std::size_t colon = l.find(':');
        if (colon == std::string_view::npos) fields.emplace_back(l, std::string());
        else fields.emplace_back(l.substr(0, colon), std::string(l.substr(colon + 1)));
    }
    for (const auto& [name, value] : fields) s.header(name, value);
    s.end_of_headers();

    std::optional<Verdict> refused;
    while (!pieces.done()) {
        v = s.body(pieces.next());
        check_verdict(v);
        check_notes(s);
        if (!v.accepted() && !refused) refused = v;
    }
    v = s.end_of_message();
    check_verdict(v);
    check_notes(s);
    if (refused) FUZZ_CHECK(!v.accepted());
    for (const TagHeader& h : s.tag_headers()) {
        FUZZ_CHECK(printable(h.name) && h.name.rfind("X-Preflight-", 0) == 0);
        for (std::size_t i = 0; i < h.value.size(); ++i) {
            unsigned char c = static_cast<unsigned char>(h.value[i]);
            if (c == '\n') FUZZ_CHECK(i + 1 < h.value.size() && h.value[i + 1] == '\t');
            else FUZZ_CHECK(c == '\t' || (c >= 0x20 && c <= 0x7e));
        }
    }
    return 0;
}
