#include "dkim_check.hpp"
#include "config.hpp"
#include "dns_name.hpp"
#include "tag_list.hpp"

// dkim.h spells C's _Bool, which C++ lacks; bool has the same size and ABI on our targets.
#define _Bool bool
#include <dkim.h>
#undef _Bool

#include <algorithm>
#include <array>
#include <cctype>
#include <cstring>
#include <list>
#include <optional>

namespace preflight {

namespace {

constexpr std::size_t kMaxHeaders = 10000;  // far above any MTA's header limits
constexpr unsigned kMinRsaBits = 1024;      // RFC 8301 3.2

// ---- libopendkim handles and our DNS query service -----------------------------------------------
struct LibClose {
    void operator()(DKIM_LIB* l) const { dkim_close(l); }
};
struct DkimFree {
    void operator()(DKIM* d) const { dkim_free(d); }
};
using DkimPtr = std::unique_ptr<DKIM, DkimFree>;

// One started query: the reply is already in libopendkim's buffer; status is what waitreply
// reports.
struct Pending {
    int status = DKIM_DNS_ERROR;
    std::size_t bytes = 0;
};

// Where the hooks find the message's resolver: set only while a verifier is inside
// libopendkim on this thread.
struct DnsContext {
    Resolver* resolver = nullptr;
    std::list<Pending> pending;  // stable addresses: they are the query handles
};
thread_local DnsContext* t_dns = nullptr;

class DnsScope {
public:
    explicit DnsScope(DnsContext& c) : prev_(t_dns) { t_dns = &c; }
    ~DnsScope() { t_dns = prev_; }
    DnsScope(const DnsScope&) = delete;
    DnsScope& operator=(const DnsScope&) = delete;

private:
    DnsContext* prev_;
};

int dns_start(void*, int type, unsigned char* query, unsigned char* buf, size_t buflen, void** qh) {
    DnsContext* c = t_dns;
    if (!c || !c->resolver || !query || !qh) return DKIM_DNS_ERROR;
    try {
        Pending p;
        auto a = c->resolver->query(reinterpret_cast<const char*>(query), static_cast<std::uint16_t>(type));
        if (a && (a->status == DnsStatus::ok || a->status == DnsStatus::nxdomain) && !a->wire.empty() &&
            a->wire.size() <= buflen) {
            std::memcpy(buf, a->wire.data(), a->wire.size());
            p.status = DKIM_DNS_SUCCESS;
            p.bytes = a->wire.size();
        } else if (a && a->status == DnsStatus::timeout) {
            p.status = DKIM_DNS_EXPIRED;
        }
        c->pending.push_back(p);
        *qh = &c->pending.back();
        return DKIM_DNS_SUCCESS;
    } catch (...) {
        return DKIM_DNS_ERROR;
    }
}

Pending* find_pending(void* qh) {
    if (!t_dns) return nullptr;
    for (auto& p : t_dns->pending)
        if (&p == qh) return &p;
    return nullptr;
}

int dns_waitreply(void*, void* qh, struct timeval*, size_t* bytes, int* error, int* dnssec) {
    const Pending* p = find_pending(qh);
    if (error) *error = 0;
    if (dnssec) *dnssec = DKIM_DNSSEC_UNKNOWN;
    if (!p) return DKIM_DNS_ERROR;
    if (bytes) *bytes = p->bytes;
    return p->status;
}

int dns_cancel(void*, void* qh) {
    if (t_dns) t_dns->pending.remove_if([qh](const Pending& p) { return &p == qh; });
    return DKIM_DNS_SUCCESS;
}

int dns_init(void**) { return 0; }
void dns_close(void*) {}

DKIM_LIB* shared_lib() {
    // The service handle only has to be non-NULL so libopendkim never starts its own resolver.
    static int service_tag = 0;
    static const std::unique_ptr<DKIM_LIB, LibClose> lib = [] {
        std::unique_ptr<DKIM_LIB, LibClose> l(dkim_init(nullptr, nullptr));
        if (!l) return l;
        unsigned int flags = DKIM_LIBFLAGS_FIXCRLF;  // milters and tests may hand us bare LFs
        dkim_options(l.get(), DKIM_OP_SETOPT, DKIM_OPTS_FLAGS, &flags, sizeof flags);
        dkim_dns_set_query_service(l.get(), &service_tag);
        dkim_dns_set_query_start(l.get(), &dns_start);
        dkim_dns_set_query_waitreply(l.get(), &dns_waitreply);
        dkim_dns_set_query_cancel(l.get(), &dns_cancel);
        dkim_dns_set_init(l.get(), &dns_init);
        dkim_dns_set_close(l.get(), &dns_close);
        return l;
    }();
    return lib.get();
}

// ---- key records -----------------------------------------------------------------------------------
std::string strip_key(std::string_view key) {
    std::string out;
    std::size_t i = 0;
    while (i < key.size()) {
        // PEM armour lines ("-----BEGIN PUBLIC KEY-----") are skipped whole.
        if (key.substr(i, 5) == "-----") {
            const auto end = key.find("-----", i + 5);
            i = end == std::string_view::npos ? key.size() : end + 5;
            continue;
        }
        if (!std::isspace(static_cast<unsigned char>(key[i]))) out += key[i];
        ++i;
    }
    return out;
}

// The conf's decoder (one base64 decoder in the project); an empty key is no key.
std::optional<std::vector<std::uint8_t>> base64_decode(std::string_view in) {
    auto out = decode_base64(in);
    if (out && out->empty()) return std::nullopt;
    return out;
}

// Minimal DER walking, enough to measure an RSA modulus.
struct Der {
    const std::uint8_t* p;
    std::size_t n;

    bool next(std::uint8_t want, Der& content) {
        if (n < 2 || p[0] != want) return false;
        std::size_t len = p[1], hdr = 2;
        if (len & 0x80) {
            const std::size_t k = len & 0x7f;
            if (k == 0 || k > 4 || n < 2 + k) return false;
            len = 0;
            for (std::size_t i = 0; i < k; ++i) len = (len << 8) | p[2 + i];
            hdr += k;
        }
        if (len > n - hdr) return false;
        content = {p + hdr, len};
        p += hdr + len;
        n -= hdr + len;
        return true;
    }
};

// Bits of the modulus of an RSA key given as SubjectPublicKeyInfo (RFC 6376 3.6.1) or as a
// bare PKCS#1 RSAPublicKey; nullopt when it is neither.
std::optional<unsigned> rsa_bits(const std::vector<std::uint8_t>& der) {
    static constexpr std::array<std::uint8_t, 9> kRsaOid{0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x01};
    Der all{der.data(), der.size()}, outer{}, rsa{};
    if (!all.next(0x30, outer)) return std::nullopt;
    if (outer.n > 0 && outer.p[0] == 0x30) {  // SubjectPublicKeyInfo
        Der alg{}, oid{}, bitstr{};
        if (!outer.next(0x30, alg) || !alg.next(0x06, oid) || !outer.next(0x03, bitstr)) return std::nullopt;
        if (oid.n != kRsaOid.size() || !std::equal(kRsaOid.begin(), kRsaOid.end(), oid.p)) return std::nullopt;
        if (bitstr.n < 1 || bitstr.p[0] != 0) return std::nullopt;
        Der key{bitstr.p + 1, bitstr.n - 1};
        if (!key.next(0x30, rsa)) return std::nullopt;
    } else {
        rsa = outer;
    }
    Der modulus{};
    if (!rsa.next(0x02, modulus)) return std::nullopt;
    while (modulus.n > 0 && modulus.p[0] == 0) {
        ++modulus.p;
        --modulus.n;
    }
    if (modulus.n == 0) return std::nullopt;
    unsigned bits = static_cast<unsigned>((modulus.n - 1) * 8);
    for (std::uint8_t top = modulus.p[0]; top; top >>= 1) ++bits;
    return bits;
}

struct KeyRecord {
    std::string p;      // whitespace removed
    std::string error;  // why the record is not a usable key; empty = usable
};

// RFC 6376 3.6.1 key record: tolerant of blanks, strict about what makes a key usable.
KeyRecord parse_key_record(std::string_view txt) {
    KeyRecord rec;
    std::string v, k = "rsa";
    bool have_p = false;
    std::string error;
    const std::vector<Tag> tags = split_tags(txt, error);
    if (!error.empty()) {
        rec.error = "not a DKIM key record (tag without '=')";
        return rec;
    }
    for (const Tag& t : tags) {
        if (t.name == "v") v = std::string(t.value);
        else if (t.name == "k") k = ascii::to_lower(t.value);
        else if (t.name == "p") {
            have_p = true;
            rec.p = strip_key(t.value);
        }
    }
    if (!v.empty() && v != "DKIM1") rec.error = "unknown version v=" + v;
    else if (!have_p) rec.error = "no p= tag";
    else if (rec.p.empty()) rec.error = "key revoked (empty p=)";
    else if (k != "rsa" && k != "ed25519") rec.error = "unknown key type k=" + k;
    else if (auto der = base64_decode(rec.p); !der) rec.error = "p= is not valid base64";
    else if (k == "ed25519") {
        if (der->size() != 32) rec.error = "ed25519 key is not 32 bytes";
    } else if (auto bits = rsa_bits(*der); !bits) {
        rec.error = "p= is not an RSA public key";
    } else if (*bits < kMinRsaBits) {
        rec.error = "RSA key of " + std::to_string(*bits) + " bits (at least 1024 needed)";
    }
    return rec;
}

int rank(DkimResult r) {
    switch (r) {
    case DkimResult::pass: return 5;
    case DkimResult::key_published: return 4;
    case DkimResult::temperror: return 3;
    case DkimResult::fail: return 2;
    case DkimResult::permerror: return 1;
    case DkimResult::none: return 0;
    }
    return 0;
}

// What DMARC alignment and the unsubscribe check need of one signature: d=, s=, verified, h=.
DkimSignatureInfo signature_info(DKIM_SIGINFO* sig, const std::string& domain, const std::string& selector) {
    DkimSignatureInfo info{domain, selector, DKIM_SIG_CHECK(sig), {}};
    const unsigned char* h = dkim_sig_gettagvalue(sig, false, reinterpret_cast<u_char*>(const_cast<char*>("h")));
    std::string_view list = h ? reinterpret_cast<const char*>(h) : "";
    while (!list.empty()) {
        std::size_t colon = list.find(':');
        std::string_view name = ascii::trim(list.substr(0, colon));
        if (!name.empty()) info.signed_headers.push_back(ascii::to_lower(name));
        if (colon == std::string_view::npos) break;
        list.remove_prefix(colon + 1);
    }
    return info;
}

// "SELECTOR._domainkey.DOMAIN" (lower case) of one DKIM-Signature header value; empty when
// it has no usable s= or d=.
std::string key_name(std::string_view signature) {
    std::string error;
    std::string_view d, sel;
    for (const Tag& t : split_tags(signature, error)) {
        if (t.name == "d") d = t.value;
        else if (t.name == "s") sel = t.value;
    }
    if (d.empty() || sel.empty()) return {};
    return ascii::to_lower(std::string(sel) + "._domainkey." + normal_domain(d));
}

// More keys than any sender signs with: a message cannot make the end of message ask for more.
constexpr std::size_t kMaxSignatureKeys = 8;

}  // namespace

bool dkim_domain_aligned(std::string_view d_domain, std::string_view sender_domain) {
    const std::string d = normal_domain(d_domain), s = normal_domain(sender_domain);
    if (d.empty() || s.empty()) return false;
    if (d == s) return true;
    const std::string& longer = d.size() > s.size() ? d : s;
    const std::string& shorter = d.size() > s.size() ? s : d;
    if (shorter.find('.') == std::string::npos) return false;  // a bare TLD aligns with nothing
    return longer.size() > shorter.size() &&
           longer.compare(longer.size() - shorter.size(), shorter.size(), shorter) == 0 &&
           longer[longer.size() - shorter.size() - 1] == '.';
}

struct DkimVerifier::State {
    DnsContext dns;
    std::string id;
    std::vector<std::string> headers;  // "Name: value", held until end_of_headers()
    bool has_signature_header = false;
    bool eoh_done = false;
    bool lib_error = false;
    DkimPtr dkim;  // only while there is a signature to verify
    std::optional<DkimOutcome> result;
    std::vector<DkimSignatureInfo> signatures;  // filled by finish()
    std::vector<std::string> key_names;          // from the DKIM-Signature headers' s= and d=
};

DkimVerifier::DkimVerifier(Resolver& resolver, std::string_view id) : s_(std::make_unique<State>()) {
    s_->dns.resolver = &resolver;
    s_->id = id.empty() ? "preflight" : std::string(id);
}

DkimVerifier::~DkimVerifier() = default;

void DkimVerifier::header(std::string_view name, std::string_view value) {
    if (s_->eoh_done || s_->headers.size() >= kMaxHeaders) return;
    if (ascii::iequals(name, "DKIM-Signature")) {
        s_->has_signature_header = true;
        // Read here because libopendkim lists its signatures only once it has verified them.
        if (std::string key = key_name(value); !key.empty() && s_->key_names.size() < kMaxSignatureKeys &&
                                               std::find(s_->key_names.begin(), s_->key_names.end(), key) ==
                                                   s_->key_names.end())
            s_->key_names.push_back(std::move(key));
    }
    std::string h;
    h.reserve(name.size() + value.size() + 2);
    h.append(name).append(":");
    if (value.empty() || (value.front() != ' ' && value.front() != '\t')) h += ' ';
    // MTAs hand folded values over with bare LF; this libopendkim reads a folded b= tag
    // correctly only with CRLF folding ("signature data corrupt" otherwise).
    for (std::size_t i = 0; i < value.size(); ++i) {
        if (value[i] == '\n' && (i == 0 || value[i - 1] != '\r')) h += '\r';
        h += value[i];
    }
    s_->headers.push_back(std::move(h));
}

void DkimVerifier::end_of_headers() {
    if (s_->eoh_done) return;
    s_->eoh_done = true;
    if (!s_->has_signature_header) {
        s_->headers.clear();
        return;
    }
    DKIM_LIB* lib = shared_lib();
    if (!lib) {
        s_->lib_error = true;
        return;
    }
    DnsScope scope(s_->dns);
    DKIM_STAT st = DKIM_STAT_OK;
    s_->dkim.reset(dkim_verify(lib, reinterpret_cast<const unsigned char*>(s_->id.c_str()), nullptr, &st));
    if (!s_->dkim) {
        s_->lib_error = true;
        return;
    }
    for (auto& h : s_->headers) dkim_header(s_->dkim.get(), reinterpret_cast<unsigned char*>(h.data()), h.size());
    s_->headers.clear();
    s_->headers.shrink_to_fit();
    // NOSIG: the DKIM-Signature headers did not parse into any signature; nothing to verify.
    if (dkim_eoh(s_->dkim.get()) == DKIM_STAT_NOSIG) s_->dkim.reset();
}

const std::vector<std::string>& DkimVerifier::key_names() const { return s_->key_names; }

bool DkimVerifier::wants_body() const { return s_->eoh_done && s_->dkim != nullptr; }

void DkimVerifier::body(std::string_view chunk) {
    if (!s_->eoh_done) end_of_headers();
    if (!s_->dkim || chunk.empty()) return;
    DnsScope scope(s_->dns);
    // dkim_body() takes a non-const pointer but does not write through it.
    dkim_body(s_->dkim.get(), reinterpret_cast<unsigned char*>(const_cast<char*>(chunk.data())), chunk.size());
}

DkimOutcome DkimVerifier::finish(std::string_view sender_domain) {
    if (s_->result) return *s_->result;
    if (!s_->eoh_done) end_of_headers();
    const std::string domain = normal_domain(sender_domain);
    DkimOutcome out;
    if (s_->lib_error) {
        out = {DkimResult::temperror, "", "libopendkim could not be initialised"};
    } else if (!s_->has_signature_header) {
        out = {DkimResult::none, "", "the message carries no DKIM signature"};
    } else if (!s_->dkim) {
        out = {DkimResult::none, "", "the message's DKIM-Signature headers are unusable"};
    } else {
        DnsScope scope(s_->dns);
        bool testkey = false;
        dkim_eom(s_->dkim.get(), &testkey);
        DKIM_SIGINFO** sigs = nullptr;
        int nsigs = 0;
        if (dkim_getsiglist(s_->dkim.get(), &sigs, &nsigs) != DKIM_STAT_OK) nsigs = 0;
        std::string others;
        out = {DkimResult::none, "", ""};
        for (int i = 0; i < nsigs && sigs; ++i) {
            DKIM_SIGINFO* sig = sigs[i];
            const char* d = reinterpret_cast<const char*>(dkim_sig_getdomain(sig));
            const char* sel = reinterpret_cast<const char*>(dkim_sig_getselector(sig));
            const std::string dd = d ? normal_domain(d) : std::string();
            const std::string ss = sel ? std::string(sel) : std::string();
            s_->signatures.push_back(signature_info(sig, dd, ss));
            if (!dkim_domain_aligned(dd, domain)) {
                if (!dd.empty()) others += (others.empty() ? "" : ", ") + dd;
                continue;
            }
            DkimOutcome cand;
            cand.selector = ss;
            const bool verified =
                (dkim_sig_getflags(sig) & DKIM_SIGFLAG_PASSED) != 0 && dkim_sig_getbh(sig) == DKIM_SIGBH_MATCH;
            const int err = dkim_sig_geterror(sig);
            if (verified) {
                cand.result = DkimResult::pass;
                cand.explanation = "DKIM signature d=" + dd + " s=" + ss + " verifies";
            } else if (err == DKIM_SIGERROR_KEYFAIL) {
                cand.result = DkimResult::temperror;
                cand.explanation = "DNS trouble fetching the key " + ss + "._domainkey." + dd;
            } else {
                cand.result = DkimResult::fail;
                const char* why = dkim_sig_getbh(sig) == DKIM_SIGBH_MISMATCH ? "body hash mismatch (body altered)"
                                                                             : dkim_sig_geterrorstr(err);
                cand.explanation =
                    "DKIM signature d=" + dd + " s=" + ss + " does not verify: " + (why ? why : "unknown error");
            }
            if (rank(cand.result) > rank(out.result)) out = std::move(cand);
        }
        if (out.result == DkimResult::none)
            out.explanation =
                "no DKIM signature by " + domain + (others.empty() ? std::string() : " (signed by " + others + ")");
        s_->dkim.reset();  // frees libopendkim's per-message memory now, not at destruction
    }
    s_->dns.pending.clear();
    s_->result = out;
    return out;
}

const std::vector<DkimSignatureInfo>& DkimVerifier::signatures() const { return s_->signatures; }

DkimOutcome dkim_key_published(Resolver& resolver, std::string_view domain_in,
                               const std::vector<std::string>& selectors, std::string_view our_public_key_base64) {
    const std::string domain = normal_domain(domain_in);
    const std::string ours = strip_key(our_public_key_base64);
    if (ours.empty()) return {DkimResult::none, "", "no DKIM public key configured"};
    if (selectors.empty()) return {DkimResult::none, "", "no DKIM selectors configured"};

    DkimOutcome best{DkimResult::none, "", ""};
    std::string tried;
    for (const auto& sel : selectors) {
        const std::string name = sel + "._domainkey." + domain;
        tried += (tried.empty() ? "" : ", ") + name;
        auto a = resolver.query(name, rrtype::TXT);
        DkimOutcome cand{DkimResult::none, sel, ""};
        if (!a || (a->status != DnsStatus::ok && a->status != DnsStatus::nxdomain)) {
            cand.result = DkimResult::temperror;
            cand.explanation = "DNS trouble (" + std::string(to_string(a ? a->status : DnsStatus::bad_answer)) +
                               ") looking up " + name;
        } else if (a->status == DnsStatus::ok && !a->records.empty()) {
            bool matched = false;
            std::string problem;
            for (const auto& txt : a->records) {
                const KeyRecord rec = parse_key_record(txt);
                if (rec.p == ours) matched = true;
                if (!rec.error.empty() && problem.empty()) problem = rec.error;
            }
            if (a->records.size() > 1 && problem.empty()) problem = "more than one TXT record (verifiers reject that)";
            if (!problem.empty()) {
                cand.result = DkimResult::permerror;
                cand.explanation = name + ": " + problem;
            } else if (matched) {
                cand.result = DkimResult::key_published;
                cand.explanation = name + " publishes our DKIM key";
            }
        }
        if (rank(cand.result) > rank(best.result)) best = std::move(cand);
        if (best.result == DkimResult::key_published) return best;
    }
    if (best.result == DkimResult::none) {
        best.selector.clear();
        best.explanation = "our DKIM key is not published at " + tried;
    }
    return best;
}

}  // namespace preflight
