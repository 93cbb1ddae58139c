#include "spf_check.hpp"
#include "dns_name.hpp"

// libspf2's headers use these types without including their headers.
#include <arpa/inet.h>
#include <arpa/nameser.h>
#include <netdb.h>
#include <netinet/in.h>

// libspf2's headers have no extern "C" of their own.
extern "C" {
#include <spf2/spf.h>
}

#include <algorithm>
#include <cctype>
#include <memory>
#include <mutex>
#include <unordered_set>

namespace preflight {

namespace {

constexpr int kMaxDnsTerms = 10;    // RFC 7208 4.6.4
constexpr int kMaxVoidLookups = 2;  // RFC 7208 4.6.4
constexpr std::size_t kMaxIdleEngines = 32;

// ---- RAII for libspf2 handles ------------------------------------------------------------------
struct ServerFree {
    void operator()(SPF_server_t* p) const { SPF_server_free(p); }
};
struct RequestFree {
    void operator()(SPF_request_t* p) const { SPF_request_free(p); }
};
struct ResponseFree {
    void operator()(SPF_response_t* p) const { SPF_response_free(p); }
};
struct RecordFree {
    void operator()(SPF_record_t* p) const { SPF_record_free(p); }
};
struct RrFree {
    void operator()(SPF_dns_rr_t* p) const { SPF_dns_rr_free(p); }
};
using ServerPtr = std::unique_ptr<SPF_server_t, ServerFree>;
using RequestPtr = std::unique_ptr<SPF_request_t, RequestFree>;
using ResponsePtr = std::unique_ptr<SPF_response_t, ResponseFree>;
using RecordPtr = std::unique_ptr<SPF_record_t, RecordFree>;
using RrPtr = std::unique_ptr<SPF_dns_rr_t, RrFree>;

bool starts_spf(std::string_view txt) {
    if (txt.size() < 6) return false;
    if (ascii::to_lower(txt.substr(0, 6)) != "v=spf1") return false;
    return txt.size() == 6 || txt[6] == ' ';
}

// Per-evaluation state of our DNS layer, reached through SPF_dns_server_t::hook.
struct EvalState {
    Resolver* resolver = nullptr;
    std::string top_domain;
    bool top_seen = false;
    int top_spf_records = 0;  // v=spf1 records in the sender domain's TXT answer
    int terms = 0;
    int voids = 0;
    std::string limit;                      // why a limit was exceeded; non-empty = stop
    std::string trouble;                    // first DNS failure, for temperror explanations
    std::unordered_set<std::string> hosts;  // MX/PTR targets: their A lookups are not terms

    void reset(Resolver& r, std::string domain) {
        resolver = &r;
        top_domain = std::move(domain);
        top_seen = false;
        top_spf_records = 0;
        terms = voids = 0;
        limit.clear();
        trouble.clear();
        hosts.clear();
    }
};

SPF_dns_rr_t* make_rr(SPF_dns_server_t* layer, const char* domain, ns_type type, int ttl, int herrno) {
    return SPF_dns_rr_new_init(layer, domain, type, ttl, herrno);
}

bool put_string(SPF_dns_rr_t* rr, int idx, const std::string& s, ns_type type) {
    if (SPF_dns_rr_buf_realloc(rr, idx, s.size() + 1) != SPF_E_SUCCESS) return false;
    char* dst = type == ns_t_mx ? rr->rr[idx]->mx : type == ns_t_ptr ? rr->rr[idx]->ptr : rr->rr[idx]->txt;
    std::copy(s.begin(), s.end(), dst);
    dst[s.size()] = '\0';
    return true;
}

// The lookup function of our libspf2 DNS layer. Never throws, never returns NULL (libspf2
// aborts on NULL): any trouble becomes TRY_AGAIN, which libspf2 turns into temperror.
SPF_dns_rr_t* layer_lookup(SPF_dns_server_t* layer, const char* domain, ns_type type, int) {
    auto* st = static_cast<EvalState*>(layer->hook);
    try {
        // libspf2 asks for the obsolete SPF RR type (99) first; it is not published anymore
        // (RFC 7208 3.1), so answer NODATA without asking the network.
        if (type != ns_t_a && type != ns_t_aaaa && type != ns_t_mx && type != ns_t_txt && type != ns_t_ptr)
            return make_rr(layer, domain, type, 0, NO_DATA);
        if (!st || !st->resolver || !st->limit.empty()) return make_rr(layer, domain, type, 0, TRY_AGAIN);

        const std::string name = normal_domain(domain ? domain : "");
        // Which lookups are RFC 7208 4.6.4 terms: not the sender domain's own record, not the
        // address lookups of MX/PTR targets; a TXT lookup is a term (include/redirect) only if
        // it finds a record — one that finds none ends evaluation as permerror anyway, and the
        // exp= lookup (not a term) never finds an SPF record.
        const bool top = type == ns_t_txt && !st->top_seen;
        if (top) st->top_seen = true;
        const bool host_lookup = (type == ns_t_a || type == ns_t_aaaa) && st->hosts.count(name);
        const bool counted_now = !top && !host_lookup && type != ns_t_txt;
        if (counted_now && ++st->terms > kMaxDnsTerms) {
            st->limit = "more than 10 DNS-querying terms (RFC 7208 4.6.4)";
            return make_rr(layer, domain, type, 0, TRY_AGAIN);
        }

        auto answer = st->resolver->query(name, static_cast<std::uint16_t>(type));
        if (!answer || (answer->status != DnsStatus::ok && answer->status != DnsStatus::nxdomain)) {
            if (st->trouble.empty())
                st->trouble = std::string(to_string(answer ? answer->status : DnsStatus::bad_answer)) + " for " + name;
            return make_rr(layer, domain, type, 0, TRY_AGAIN);
        }
        const int ttl = static_cast<int>(std::min<std::uint32_t>(answer->ttl, 86400));
        if (answer->status == DnsStatus::nxdomain || answer->records.empty()) {
            if (counted_now && ++st->voids > kMaxVoidLookups) {
                st->limit = "more than 2 void DNS lookups (RFC 7208 4.6.4)";
                return make_rr(layer, domain, type, 0, TRY_AGAIN);
            }
            return make_rr(layer, domain, type, ttl, answer->status == DnsStatus::nxdomain ? HOST_NOT_FOUND : NO_DATA);
        }

        if (type == ns_t_txt) {
            const auto spf = std::count_if(answer->records.begin(), answer->records.end(),
                                           [](const std::string& t) { return starts_spf(t); });
            if (top) {
                st->top_spf_records = static_cast<int>(spf);
            } else if (spf > 0 && ++st->terms > kMaxDnsTerms) {
                st->limit = "more than 10 DNS-querying terms (RFC 7208 4.6.4)";
                return make_rr(layer, domain, type, 0, TRY_AGAIN);
            }
        }

        RrPtr rr(make_rr(layer, domain, type, ttl, NETDB_SUCCESS));
        if (!rr) return make_rr(layer, domain, type, 0, TRY_AGAIN);
        int n = 0;
        if (type == ns_t_mx) {
            for (const auto& mx : answer->mx) {
                if (mx.exchange.empty()) continue;  // null MX (RFC 7505): no host to match
                st->hosts.insert(mx.exchange);
                if (!put_string(rr.get(), n++, mx.exchange, type)) return make_rr(layer, domain, type, 0, TRY_AGAIN);
            }
        } else {
            for (const auto& rec : answer->records) {
                if (type == ns_t_a || type == ns_t_aaaa) {
                    if (SPF_dns_rr_buf_realloc(rr.get(), n, sizeof(SPF_dns_rr_data_t)) != SPF_E_SUCCESS)
                        return make_rr(layer, domain, type, 0, TRY_AGAIN);
                    void* dst =
                        type == ns_t_a ? static_cast<void*>(&rr->rr[n]->a) : static_cast<void*>(&rr->rr[n]->aaaa);
                    if (inet_pton(type == ns_t_a ? AF_INET : AF_INET6, rec.c_str(), dst) != 1) continue;
                    ++n;
                } else {
                    std::string text = rec;
                    if (type == ns_t_ptr) st->hosts.insert(text);
                    // libspf2 only recognises "v=spf1 " with the blank; a bare "v=spf1" is a
                    // valid, empty record (neutral).
                    if (type == ns_t_txt && text.size() == 6 && starts_spf(text)) text += ' ';
                    if (!put_string(rr.get(), n++, text, type)) return make_rr(layer, domain, type, 0, TRY_AGAIN);
                }
            }
        }
        rr->num_rr = n;
        return rr.release();  // libspf2 frees it with SPF_dns_rr_free
    } catch (...) {
        if (st && st->trouble.empty()) st->trouble = "internal error during DNS lookup";
        return make_rr(layer, domain, type, 0, TRY_AGAIN);
    }
}

// One SPF_server_t with our DNS layer. destroy == NULL tells libspf2 the layer is not its to
// free; it lives (and dies) here, after the server (members are destroyed in reverse order).
struct Engine {
    EvalState state;
    SPF_dns_server_t layer{};
    ServerPtr server;

    Engine() {
        layer.destroy = nullptr;
        layer.lookup = &layer_lookup;
        layer.get_spf = nullptr;
        layer.get_exp = nullptr;
        layer.add_cache = nullptr;
        layer.layer_below = nullptr;
        layer.name = "preflight";
        layer.debug = 0;
        layer.hook = &state;
        server.reset(SPF_server_new_dns(&layer, 0));
        if (!server) throw std::bad_alloc();
        SPF_server_set_rec_dom(server.get(), "preflight");
    }
};

class EnginePool {
public:
    std::unique_ptr<Engine> acquire() {
        {
            std::lock_guard lock(mutex_);
            if (!idle_.empty()) {
                auto e = std::move(idle_.back());
                idle_.pop_back();
                return e;
            }
        }
        return std::make_unique<Engine>();
    }
    void release(std::unique_ptr<Engine> e) {
        e->state.resolver = nullptr;
        std::lock_guard lock(mutex_);
        if (idle_.size() < kMaxIdleEngines) idle_.push_back(std::move(e));
    }

private:
    std::mutex mutex_;
    std::vector<std::unique_ptr<Engine>> idle_;
};

EnginePool& pool() {
    static EnginePool p;
    return p;
}

// Borrow an engine for one evaluation; give it back on every path.
class Lease {
public:
    Lease() : engine_(pool().acquire()) {}
    ~Lease() { pool().release(std::move(engine_)); }
    Lease(const Lease&) = delete;
    Lease& operator=(const Lease&) = delete;
    Engine& operator*() { return *engine_; }
    Engine* operator->() { return engine_.get(); }

private:
    std::unique_ptr<Engine> engine_;
};

void quiet_libspf2() {
    // libspf2 prints info and warnings on stdout/stderr; a daemon's output is its log lines.
    static std::once_flag once;
    std::call_once(once, [] {
        SPF_info_handler = nullptr;
        SPF_warning_handler = nullptr;
        SPF_debug_handler = nullptr;
    });
}

SpfResult map_result(SPF_result_t r) {
    switch (r) {
    case SPF_RESULT_PASS: return SpfResult::pass;
    case SPF_RESULT_FAIL: return SpfResult::fail;
    case SPF_RESULT_SOFTFAIL: return SpfResult::softfail;
    case SPF_RESULT_NEUTRAL: return SpfResult::neutral;
    case SPF_RESULT_NONE: return SpfResult::none;
    case SPF_RESULT_TEMPERROR: return SpfResult::temperror;
    case SPF_RESULT_PERMERROR:
    case SPF_RESULT_INVALID:
    default: return SpfResult::permerror;
    }
}

std::string first_error(SPF_response_t* resp) {
    for (int i = 0; i < SPF_response_messages(resp); ++i) {
        SPF_error_t* e = SPF_response_message(resp, i);
        if (SPF_error_errorp(e) && SPF_error_message(e)) return SPF_error_message(e);
    }
    return {};
}

}  // namespace

SpfOutcome check_spf(Resolver& resolver, std::string_view sender_domain, std::string_view mail_from,
                     std::string_view client_ip, std::string_view helo) {
    quiet_libspf2();
    const std::string domain = normal_domain(sender_domain);
    const std::string ip(client_ip);
    SpfOutcome out;
    if (domain.empty()) {
        out.result = SpfResult::none;
        out.explanation = "no sender domain";
        return out;
    }

    Lease engine;
    engine->state.reset(resolver, domain);
    RequestPtr req(SPF_request_new(engine->server.get()));
    if (!req) return {SpfResult::temperror, "out of memory"};
    const bool v6 = ip.find(':') != std::string::npos;
    if ((v6 ? SPF_request_set_ipv6_str(req.get(), ip.c_str()) : SPF_request_set_ipv4_str(req.get(), ip.c_str())) !=
        SPF_E_SUCCESS)
        return {SpfResult::permerror, "'" + ip + "' is not an IP address"};

    // The evaluated domain is sender_domain; the local part of mail_from feeds %{l}/%{s}.
    std::string local = "postmaster";
    if (const auto at = mail_from.rfind('@'); at != std::string_view::npos && at > 0)
        local = std::string(mail_from.substr(0, at));
    const std::string env_from = local + "@" + domain;
    if (SPF_request_set_env_from(req.get(), env_from.c_str()) != 0) return {SpfResult::temperror, "out of memory"};
    if (!helo.empty()) {
        const std::string h(helo);
        SPF_request_set_helo_dom(req.get(), h.c_str());
    }
    req->cur_dom = req->env_from_dp;  // what libspf2's (skipped) request preparation does

    ResponsePtr resp(SPF_response_new(req.get()));
    if (!resp) return {SpfResult::temperror, "out of memory"};

    // SPF_request_query_mailfrom() minus its localhost free ride.
    SPF_record_t* raw_record = nullptr;
    const SPF_errcode_t err = SPF_server_get_record(engine->server.get(), req.get(), resp.get(), &raw_record);
    RecordPtr record(raw_record);
    const EvalState& st = engine->state;

    if (!st.limit.empty()) return {SpfResult::permerror, st.limit};
    if (err != SPF_E_SUCCESS) {
        if (err == SPF_E_DNS_ERROR)
            return {SpfResult::temperror, "DNS trouble looking up the SPF record of " + domain +
                                              (st.trouble.empty() ? "" : " (" + st.trouble + ")")};
        if (err == SPF_E_MULTIPLE_RECORDS)
            return {SpfResult::permerror, domain + " publishes more than one SPF record"};
        if (err == SPF_E_NOT_SPF && st.top_spf_records == 0)
            return {SpfResult::none, domain + " publishes no SPF record"};
        const std::string why = first_error(resp.get());
        return {SpfResult::permerror, "the SPF record of " + domain + " is invalid" + (why.empty() ? "" : ": " + why)};
    }

    resp->spf_record_exp = record.get();
    SPF_record_interpret(record.get(), req.get(), resp.get(), 0);
    resp->spf_record_exp = nullptr;  // the record dies before the response

    out.result = map_result(SPF_response_result(resp.get()));
    if (!st.limit.empty()) {
        out.result = SpfResult::permerror;
        out.explanation = "the SPF record of " + domain + " needs " + st.limit;
        return out;
    }
    switch (out.result) {
    case SpfResult::pass: out.explanation = "the SPF record of " + domain + " allows " + ip; break;
    case SpfResult::fail: out.explanation = "the SPF record of " + domain + " does not allow " + ip; break;
    case SpfResult::softfail:
        out.explanation = "the SPF record of " + domain + " does not allow " + ip + " (~all)";
        break;
    case SpfResult::neutral: out.explanation = "the SPF record of " + domain + " says nothing about " + ip; break;
    case SpfResult::none: out.explanation = domain + " publishes no SPF record"; break;
    case SpfResult::temperror:
        out.explanation = "DNS trouble while evaluating the SPF record of " + domain +
                          (st.trouble.empty() ? "" : " (" + st.trouble + ")");
        break;
    case SpfResult::permerror: {
        const SPF_errcode_t e = SPF_response_errcode(resp.get());
        std::string why;
        if (e == SPF_E_INCLUDE_RETURNED_NONE) why = "an include: names a domain without SPF record";
        else if (e == SPF_E_RECURSIVE) why = "include loop";
        else if (e == SPF_E_BIG_DNS) why = "too many DNS lookups";
        else why = first_error(resp.get());
        if (why.empty()) why = SPF_strerror(e);
        out.explanation = "the SPF record of " + domain + " is broken: " + why;
        break;
    }
    }
    return out;
}

namespace {

bool definite_non_pass(SpfResult r) { return r != SpfResult::pass && r != SpfResult::temperror; }

std::string join_ips(const std::vector<std::string>& ips) {
    std::string list;
    for (const auto& ip : ips) list += (list.empty() ? "" : ", ") + ip;
    return list;
}

// The explanations of the addresses that did not pass, each once ("example.org publishes no SPF
// record" is the same for every address), in order, joined by "; ".
std::string explain_unauthorized(const std::vector<EgressSpf>& per_address) {
    std::vector<std::string_view> seen;
    std::string out;
    for (const EgressSpf& e : per_address) {
        if (!definite_non_pass(e.outcome.result)) continue;
        std::string_view why = e.outcome.explanation;
        if (std::find(seen.begin(), seen.end(), why) != seen.end()) continue;
        seen.push_back(why);
        out += (out.empty() ? "" : "; ") + std::string(why);
    }
    return out;
}

}  // namespace

SpfOutcome combine_egress_spf(std::string_view sender_domain, const std::vector<EgressSpf>& per_address,
                              SpfEgressMatch match) {
    if (per_address.empty()) return {SpfResult::none, "no egress addresses configured"};
    const std::string domain = normal_domain(sender_domain);
    const EgressSpf* first_pass = nullptr;
    const EgressSpf* first_temp = nullptr;
    const EgressSpf* first_failure = nullptr;
    std::vector<std::string> passed, unauthorized;
    for (const EgressSpf& e : per_address) {
        if (e.outcome.result == SpfResult::pass) {
            if (!first_pass) first_pass = &e;
            passed.push_back(e.ip);
        } else if (e.outcome.result == SpfResult::temperror) {
            if (!first_temp) first_temp = &e;
        } else {
            if (!first_failure) first_failure = &e;
            unauthorized.push_back(e.ip);
        }
    }
    auto temporary = [&] {
        SpfOutcome o = first_temp->outcome;
        o.explanation = "for egress address " + first_temp->ip + ": " + o.explanation;
        return o;
    };
    if (match == SpfEgressMatch::any) {
        if (first_pass) return {SpfResult::pass, "the SPF record of " + domain + " allows " + first_pass->ip};
        if (first_temp) return temporary();  // a retry may still pass
    } else {
        if (!first_failure && !first_temp)
            return {SpfResult::pass, "the SPF record of " + domain + " allows " + join_ips(passed)};
        if (!first_failure) return temporary();  // a definite failure would settle it; none yet
    }
    return {first_failure->outcome.result, explain_unauthorized(per_address), std::move(unauthorized)};
}

SpfOutcome check_spf_for_egress(Resolver& resolver, std::string_view sender_domain, std::string_view mail_from,
                                const std::vector<std::string>& egress_ips, SpfEgressMatch match) {
    std::vector<EgressSpf> per_address;
    per_address.reserve(egress_ips.size());
    for (const auto& ip : egress_ips) {
        per_address.push_back({ip, check_spf(resolver, sender_domain, mail_from, ip, "")});
        if (match == SpfEgressMatch::any && per_address.back().outcome.result == SpfResult::pass) break;
    }
    return combine_egress_spf(sender_domain, per_address, match);
}

}  // namespace preflight
