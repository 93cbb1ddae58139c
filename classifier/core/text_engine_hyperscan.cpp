// The Hyperscan engine: every pattern of a group in one database, scanned in one pass with no
// per-input construction (RE2's lazy DFA builds states for each text it has not seen, and every
// bounce is new text). Two groups at most: the site rule files, then the shipped ones.
//
// On pure-ASCII text (nearly every reply) a group is not scanned with that database: its
// per-scan cost (a few hundred automata, ~2 us for a short reply) is most of a reply's time.
// A database of literals (ascii_prefilter.hpp) is scanned instead; a hit of an exact literal is a
// match, any other only nominates its pattern, which is then checked alone with RE2 in rule
// order, and only when the rule could decide (only= fits). RE2 and Hyperscan read the rule
// patterns alike on ASCII text: the engines are tested to give the same answers.
#include "text_engine_impl.hpp"

#include <hs/hs.h>

#include <algorithm>
#include <atomic>
#include <cstdlib>
#include <cstring>
#include <cwctype>
#include <locale.h>
#include <mutex>

#include "ascii_prefilter.hpp"
#include "rule_set.hpp"
#include "utf8.hpp"

namespace preflight {
namespace {

// The other case of a letter outside ASCII (0 when it has none), by the C.UTF-8 locale's tables.
char32_t other_case(char32_t cp) {
    static const locale_t utf8 = newlocale(LC_CTYPE_MASK, "C.UTF-8", static_cast<locale_t>(nullptr));
    if (!utf8) return 0;
    auto w = static_cast<wint_t>(cp);
    wint_t o = towlower_l(w, utf8);
    if (o == w) o = towupper_l(w, utf8);
    return o == w ? 0 : static_cast<char32_t>(o);
}

// Hyperscan folds case for ASCII only unless in UCP mode, which has no \b; RE2 folds every
// letter. So that both engines give the same answers, each letter outside ASCII becomes a class
// of both cases ("ящик" -> "[яЯ][щЩ][иИ][кК]"; in a class, "[а-я]" -> "[а-яА-Я]").
std::string fold_non_ascii(std::string_view p) {
    std::string out;
    out.reserve(p.size() * 2);
    bool in_class = false;
    for (std::size_t i = 0; i < p.size();) {
        char c = p[i];
        if (c == '\\' && i + 1 < p.size() && static_cast<unsigned char>(p[i + 1]) < 0x80) {
            out.append(p.substr(i, 2));
            i += 2;
            continue;
        }
        if (static_cast<unsigned char>(c) < 0x80) {
            if (c == '[' && !in_class) in_class = true;
            else if (c == ']' && in_class && !(out.size() && out.back() == '[') && !out.ends_with("[^"))
                in_class = false;
            out.push_back(c);
            ++i;
            continue;
        }
        char32_t cp = 0;
        std::size_t n = utf8_sequence(p, i, &cp);
        if (n == 0) {  // not UTF-8: left for the compiler to reject
            out.push_back(c);
            ++i;
            continue;
        }
        char32_t o = other_case(cp);
        if (in_class) {
            // A range of letters: its other case as a second range, when the case mapping keeps
            // the range contiguous (Cyrillic, Greek, Latin-1).
            char32_t hi = 0;
            std::size_t m = 0;
            if (i + n + 1 < p.size() && p[i + n] == '-') m = utf8_sequence(p, i + n + 1, &hi);
            if (m) {
                char32_t ohi = other_case(hi);
                append_utf8(out, cp);
                out.push_back('-');
                append_utf8(out, hi);
                if (o && ohi && ohi > o && ohi - o == hi - cp) {
                    append_utf8(out, o);
                    out.push_back('-');
                    append_utf8(out, ohi);
                }
                i += n + 1 + m;
                continue;
            }
            append_utf8(out, cp);
            if (o) append_utf8(out, o);
        } else if (o) {
            out.push_back('[');
            append_utf8(out, cp);
            append_utf8(out, o);
            out.push_back(']');
        } else {
            append_utf8(out, cp);
        }
        i += n;
    }
    return out;
}

struct DatabaseFree {
    void operator()(hs_database_t* db) const { hs_free_database(db); }
};
using Database = std::unique_ptr<hs_database_t, DatabaseFree>;

std::atomic<std::uint64_t> next_engine_serial{1};

// Hyperscan's UTF-8 mode is undefined on text that is not UTF-8, and bounces carry Latin-1,
// cut sequences and binary junk. RE2 reads each byte of a bad sequence as U+FFFD; so the text
// is scanned with each such byte replaced by U+FFFD: the same answers, defined behaviour. Text
// that is valid (nearly all of it) is scanned as it is, without a copy.
std::string_view valid_utf8(std::string_view text) {
    std::size_t i = 0;
    const std::size_t n = text.size();
    // ASCII, or a well-formed sequence (its length), or 0.
    auto valid_at = [&](std::size_t k) -> std::size_t {
        return static_cast<unsigned char>(text[k]) < 0x80 ? 1 : utf8_sequence(text, k);
    };
    for (std::size_t len; i < n && (len = valid_at(i)) != 0;) i += len;
    if (i == n) return text;
    thread_local std::string repaired;
    repaired.assign(text.substr(0, i));
    while (i < n) {
        std::size_t len = valid_at(i);
        if (len == 0) {
            repaired.append("\xEF\xBF\xBD");
            ++i;
        } else {
            repaired.append(text.substr(i, len));
            i += len;
        }
    }
    return repaired;
}

constexpr unsigned kPatternFlags = HS_FLAG_CASELESS | HS_FLAG_UTF8 | HS_FLAG_SINGLEMATCH;

// Patterns [start, end) in one database, pattern i with id i - start. platform null: this CPU.
Database compile_group(const std::vector<TextPattern>& patterns, std::size_t start, std::size_t end,
                       const hs_platform_info_t* platform) {
    std::vector<std::string> folded;
    std::vector<const char*> exprs;
    std::vector<unsigned> flags, ids;
    for (std::size_t i = start; i < end; ++i) folded.push_back(fold_non_ascii(patterns[i].pattern));
    for (std::size_t i = start; i < end; ++i) {
        exprs.push_back(folded[i - start].c_str());
        flags.push_back(kPatternFlags);
        ids.push_back(static_cast<unsigned>(i - start));
    }
    hs_database_t* db = nullptr;
    hs_compile_error_t* err = nullptr;
    if (hs_compile_multi(exprs.data(), flags.data(), ids.data(), static_cast<unsigned>(exprs.size()), HS_MODE_BLOCK,
                         platform, &db, &err) != HS_SUCCESS) {
        std::string where = err && err->expression >= 0
                                ? patterns[start + static_cast<std::size_t>(err->expression)].location
                                : patterns[start].location;
        std::string why = err && err->message ? err->message : "compile failed";
        hs_free_compile_error(err);
        throw RuleError(where + ": pattern the rule engine (Hyperscan) cannot compile: " + why);
    }
    return Database(db);
}

// The literal database of a group's ASCII prefilter, each literal matched without regard to
// case, id = its index. platform null: this CPU. Null when there are no literals.
Database compile_literals(const AsciiPrefilter& pf, const hs_platform_info_t* platform) {
    if (pf.literals.empty()) return nullptr;
    std::vector<const char*> exprs;
    std::vector<std::size_t> lens;
    std::vector<unsigned> flags, ids;
    for (std::size_t i = 0; i < pf.literals.size(); ++i) {
        exprs.push_back(pf.literals[i].text.data());
        lens.push_back(pf.literals[i].text.size());
        flags.push_back(HS_FLAG_CASELESS);  // every occurrence: an exact one's boundaries may fail
        ids.push_back(static_cast<unsigned>(i));
    }
    hs_database_t* db = nullptr;
    hs_compile_error_t* err = nullptr;
    if (hs_compile_lit_multi(exprs.data(), flags.data(), ids.data(), lens.data(), static_cast<unsigned>(exprs.size()),
                             HS_MODE_BLOCK, platform, &db, &err) != HS_SUCCESS) {
        std::string why = err && err->message ? err->message : "compile failed";
        hs_free_compile_error(err);
        throw RuleError("the rule engine's literal prefilter (Hyperscan) cannot be compiled: " + why);
    }
    return Database(db);
}

class Fnv {
public:
    void mix(std::string_view s) {
        for (char c : s) {
            h_ ^= static_cast<unsigned char>(c);
            h_ *= 1099511628211ull;
        }
        h_ ^= 0xff;  // separator: ("ab","c") differs from ("a","bc")
        h_ *= 1099511628211ull;
    }
    std::uint64_t value() const { return h_; }

private:
    std::uint64_t h_ = 1469598103934665603ull;
};

std::uint64_t fingerprint_of(const std::vector<TextPattern>& patterns, std::size_t start, std::size_t end) {
    Fnv h;
    h.mix(std::to_string(kPatternFlags));
    for (std::size_t i = start; i < end; ++i) h.mix(patterns[i].pattern);
    return h.value();
}

std::uint64_t fingerprint_of(const AsciiPrefilter& pf) {
    Fnv h;
    h.mix("literals, caseless");
    for (const PrefilterLiteral& l : pf.literals) h.mix(l.text);
    return h.value();
}

// A built-in database, when it was made from exactly what its fingerprint says.
Database embedded(const EmbeddedDatabase& e, std::uint64_t fingerprint) {
    if (e.size == 0 || fingerprint != e.fingerprint) return nullptr;
    hs_database_t* db = nullptr;
    if (hs_deserialize_database(e.bytes, e.size, &db) != HS_SUCCESS) return nullptr;  // compiled instead
    return Database(db);
}

// Whether a built-in database fits (its fingerprint) and this Hyperscan can load it (its header:
// version, platform), without loading it.
bool embedded_fits(const EmbeddedDatabase& e, std::uint64_t fingerprint) {
    std::size_t size = 0;
    return e.size != 0 && fingerprint == e.fingerprint &&
           hs_serialized_database_size(e.bytes, e.size, &size) == HS_SUCCESS;
}

std::uint64_t tables_fingerprint(const std::vector<TextPattern>& patterns, std::size_t start, std::size_t end) {
    Fnv h;
    h.mix("ascii prefilter tables 2");  // bump when analyse_for_ascii reads patterns otherwise
    h.mix(std::to_string(fingerprint_of(patterns, start, end)));
    return h.value();
}

// The built-in prefilter of the shipped rules, when it was made from exactly these patterns.
bool embedded_prefilter(const std::vector<TextPattern>& patterns, std::size_t start, std::size_t end,
                        AsciiPrefilter& out) {
    const EmbeddedDatabase& e = kShippedPrefilterTables;
    if (e.size == 0 || e.fingerprint != tables_fingerprint(patterns, start, end)) return false;
    return prefilter_from_bytes(std::string_view(e.bytes, e.size), out);
}

// Text the ASCII path may take: ASCII, on which RE2 (the path's checks) and Hyperscan read the
// rule patterns alike, but for two things (found by fuzz_ascii_path): a vertical tab is \s to
// Hyperscan (PCRE) and \S to RE2, and Hyperscan's $ also matches before a final newline. Text
// with either goes through the whole database, as text outside ASCII does.
bool ascii_path_fits(std::string_view text) {
    if (!text.empty() && text.back() == '\n') return false;
    // Eight bytes at a time: the check runs on every reply.
    constexpr std::uint64_t kOnes = 0x0101010101010101ull, kHigh = 0x8080808080808080ull;
    std::size_t i = 0;
    for (; i + 8 <= text.size(); i += 8) {
        std::uint64_t w;
        std::memcpy(&w, text.data() + i, 8);
        const std::uint64_t vt = w ^ (kOnes * 0x0b);  // a zero byte where w has a vertical tab
        if ((w & kHigh) || ((vt - kOnes) & ~vt & kHigh)) return false;
    }
    for (; i < text.size(); ++i)
        if (static_cast<unsigned char>(text[i]) >= 0x80 || text[i] == '\v') return false;
    return true;
}

class HyperscanEngine final : public TextEngine {
public:
    // ascii_path false: every text through the whole database, as the tests compare against.
    // eager_checks: RE2 checks from the first use (compile_after_ 0), for the tests.
    HyperscanEngine(const std::vector<TextPattern>& patterns, bool ascii_path, bool eager_checks)
        : ascii_path_(ascii_path), compile_after_(eager_checks ? 0 : kCompileAfterUses) {
        for (std::size_t start = 0; start < patterns.size();) {
            std::size_t end = start;
            while (end < patterns.size() && patterns[end].shipped == patterns[start].shipped) ++end;
            const bool shipped = patterns[start].shipped;
            auto g = std::make_unique<Group>();
            g->first = static_cast<std::uint32_t>(start);
            // The shipped rules' whole database is loaded when first needed (text outside the
            // ASCII path, a nominated pattern not yet compiled by RE2): a one-shot reply on the
            // ASCII path never needs it. Site rules are compiled here, where their errors belong.
            if (shipped && embedded_fits(kShippedHyperscanDatabase, fingerprint_of(patterns, start, end)))
                g->db_bytes = &kShippedHyperscanDatabase;
            else g->db = compile_group(patterns, start, end, nullptr);
            if (!shipped || !embedded_prefilter(patterns, start, end, g->prefilter))
                g->prefilter = analyse_for_ascii(patterns, start, end);
            g->literals = shipped ? embedded(kShippedPrefilterDatabase, fingerprint_of(g->prefilter)) : nullptr;
            if (!g->literals) g->literals = compile_literals(g->prefilter, nullptr);
            for (std::size_t i = start; i < end; ++i) g->patterns.push_back(patterns[i].pattern);
            g->whole = std::make_unique<Check[]>(end - start);
            g->parts = std::make_unique<Check[]>(g->prefilter.checks.size());
            groups_.push_back(std::move(g));
            start = end;
        }
    }

    std::size_t group_count() const override { return groups_.size(); }

    void scan(std::size_t g, std::string_view text, std::vector<std::uint32_t>& hits) const override {
        Hits ctx{&hits, groups_[g]->first};
        std::string_view valid = valid_utf8(text);
        hs_scratch_t* scratch = whole_scratch();
        hs_scan(groups_[g]->database(), valid.data(), static_cast<unsigned>(valid.size()), 0, scratch, on_match, &ctx);
    }

    void visit(std::size_t g, std::string_view text, MatchVisitor& v) const override {
        if (ascii_path_ && ascii_path_fits(text)) visit_ascii(*groups_[g], text, v);
        else TextEngine::visit(g, text, v);
    }

private:
    // A pattern, or the part of it a prefilter check names, checked alone with RE2 once it has
    // been needed often enough to pay for compiling it (a one-shot run over a few bounces would
    // spend more compiling than scanning); until then the text is scanned with the group's whole
    // database, at most once per text.
    static constexpr std::uint32_t kCompileAfterUses = 32;
    struct Check {
        std::atomic<const RE2*> re{nullptr};  // owned
        std::atomic<std::uint32_t> uses{0};
        ~Check() { delete re.load(); }
    };
    struct Group {
        // The whole database; for the shipped rules, loaded from db_bytes on first use.
        const hs_database_t* database() const {
            if (db_bytes)
                std::call_once(db_once, [this] {
                    db = embedded(*db_bytes, db_bytes->fingerprint);
                    if (!db) throw std::bad_alloc();  // its header was checked: only memory can fail
                });
            return db.get();
        }
        mutable Database db;
        mutable std::once_flag db_once;
        const EmbeddedDatabase* db_bytes = nullptr;
        std::uint32_t first = 0;  // pattern index of the group's id 0
        AsciiPrefilter prefilter;
        Database literals;                  // null: no literals
        std::vector<std::string> patterns;  // the text of the checks:
        std::unique_ptr<Check[]> whole;     // of each pattern
        std::unique_ptr<Check[]> parts;     // of each prefilter.checks entry
    };
    struct Hits {
        std::vector<std::uint32_t>* out;
        std::uint32_t first;
    };
    // Per pattern of a group, what the literal scan found: nothing, nominations (to check in the
    // parts that nominated it), or a match; or that it is checked whole on every text.
    enum Seen : std::uint8_t { unseen, nominated, matched, whole };
    struct AsciiScan {
        const Group* group;
        std::string_view text;
        std::vector<Seen>* seen;
        std::vector<std::uint32_t>* touched;
        std::vector<std::pair<std::uint32_t, std::uint32_t>>* nominations;  // (pattern, check)
    };

    static int on_match(unsigned id, unsigned long long, unsigned long long, unsigned, void* ctx) {
        auto* h = static_cast<Hits*>(ctx);
        h->out->push_back(h->first + id);
        return 0;  // go on: every pattern that matches is wanted, HS_FLAG_SINGLEMATCH reports each once
    }

    static int on_literal(unsigned id, unsigned long long, unsigned long long to, unsigned, void* ctx) {
        auto* s = static_cast<AsciiScan*>(ctx);
        const PrefilterLiteral& lit = s->group->prefilter.literals[id];
        const std::size_t end = static_cast<std::size_t>(to), begin = end - lit.text.size();
        auto word_at = [s](std::size_t i) {
            return i < s->text.size() && ascii_word_byte(static_cast<unsigned char>(s->text[i]));
        };
        for (const PrefilterLiteral::Use& u : lit.uses) {
            Seen& seen = (*s->seen)[u.pattern];
            if (seen == matched) continue;
            Seen now = nominated;
            if (u.exact) {
                bool ok = (!u.boundary_before || (begin > 0 && word_at(begin - 1)) != word_at(begin)) &&
                          (!u.boundary_after || word_at(end - 1) != word_at(end));
                if (!ok) continue;
                now = matched;
            }
            if (seen == unseen) s->touched->push_back(u.pattern);
            seen = now;
            if (now == nominated) s->nominations->emplace_back(u.pattern, u.check);
        }
        return 0;
    }

    // The ASCII path: the literal scan, then the nominated and always-checked patterns in order.
    void visit_ascii(const Group& g, std::string_view text, MatchVisitor& v) const {
        thread_local std::vector<Seen> seen;
        thread_local std::vector<std::uint32_t> touched;
        thread_local std::vector<std::pair<std::uint32_t, std::uint32_t>> nominations;
        if (seen.size() < g.patterns.size()) seen.resize(g.patterns.size(), unseen);
        touched.clear();
        nominations.clear();
        if (g.literals) {
            AsciiScan ctx{&g, text, &seen, &touched, &nominations};
            hs_scan(g.literals.get(), text.data(), static_cast<unsigned>(text.size()), 0, literal_scratch(), on_literal,
                    &ctx);
        }
        for (std::uint32_t i : g.prefilter.always) {
            if (seen[i] == unseen) touched.push_back(i);
            if (seen[i] != matched) seen[i] = whole;
        }
        std::sort(touched.begin(), touched.end());
        std::sort(nominations.begin(), nominations.end());
        nominations.erase(std::unique(nominations.begin(), nominations.end()), nominations.end());
        auto nom = nominations.begin();
        WholeScan whole_scan{this, group_index(g), text, false, compile_after_};
        bool done = false;
        for (std::uint32_t i : touched) {
            if (done || !v.wanted(g.first + i)) continue;
            bool match = seen[i] == matched;
            if (seen[i] == whole) {
                match = matches(g.whole[i], g.patterns[i], g.patterns[i], g.first + i, whole_scan);
            } else if (seen[i] == nominated) {
                while (nom != nominations.end() && nom->first < i) ++nom;
                for (; !match && nom != nominations.end() && nom->first == i; ++nom) {
                    const PrefilterCheck& c = g.prefilter.checks[nom->second];
                    match =
                        matches(g.parts[nom->second], std::string_view(g.patterns[i]).substr(c.begin, c.end - c.begin),
                                g.patterns[i], g.first + i, whole_scan);
                }
            }
            if (match) done = v.found(g.first + i);
        }
        for (std::uint32_t i : touched) seen[i] = unseen;
    }

    std::size_t group_index(const Group& g) const {
        std::size_t k = 0;
        while (groups_[k].get() != &g) ++k;
        return k;
    }

    // The hits of the group's whole database on one text, made when first asked for.
    struct WholeScan {
        const HyperscanEngine* engine;
        std::size_t group;
        std::string_view text;
        bool made;
        std::uint32_t compile_after;  // the engine's compile_after_
        bool has(std::uint32_t pattern) {
            thread_local std::vector<std::uint32_t> hits;
            if (!made) {
                hits.clear();
                engine->scan(group, text, hits);
                std::sort(hits.begin(), hits.end());
                made = true;
            }
            return std::binary_search(hits.begin(), hits.end(), pattern);
        }
    };

    // Whether part (of pattern, or all of it; index in the engine: pattern_index) matches the
    // text: by RE2 once compiled into c, else by the whole database. A part RE2 does not take
    // alone is compiled as the whole pattern.
    static bool matches(Check& c, std::string_view part, const std::string& pattern, std::uint32_t pattern_index,
                        WholeScan& whole_scan) {
        const RE2* re = c.re.load(std::memory_order_acquire);
        if (!re) {
            if (c.uses.fetch_add(1, std::memory_order_relaxed) + 1 < whole_scan.compile_after)
                return whole_scan.has(pattern_index);
            auto fresh = std::make_unique<RE2>(re2::StringPiece(part.data(), part.size()), rule_re2_options());
            if (!fresh->ok()) fresh = std::make_unique<RE2>(pattern, rule_re2_options());
            const RE2* expected = nullptr;
            if (c.re.compare_exchange_strong(expected, fresh.get(), std::memory_order_acq_rel)) re = fresh.release();
            else re = expected;  // another thread's, the same
        }
        return RE2::PartialMatch(re2::StringPiece(whole_scan.text.data(), whole_scan.text.size()), *re);
    }

    // One scratch per thread, grown to fit every engine the thread has used; checked again only
    // when the thread meets another engine than the last one. literal_scratch fits the databases
    // made at start (literals, site rules); whole_scratch also every whole database, loading the
    // shipped one (a scratch grows only between scans: no scan of this thread is running then).
    struct Scratch {
        hs_scratch_t* s = nullptr;
        std::uint64_t serial = 0;        // literal_scratch fits this engine
        std::uint64_t whole_serial = 0;  // whole_scratch fits it
        ~Scratch() { hs_free_scratch(s); }
    };
    static Scratch& scratch_of_thread() {
        thread_local Scratch tl;
        return tl;
    }
    hs_scratch_t* literal_scratch() const {
        Scratch& tl = scratch_of_thread();
        if (tl.serial != serial_) {
            for (const auto& g : groups_)
                for (const hs_database_t* db : {g->db_bytes ? nullptr : g->db.get(), g->literals.get()})
                    if (db && hs_alloc_scratch(db, &tl.s) != HS_SUCCESS) throw std::bad_alloc();
            tl.serial = serial_;
        }
        return tl.s;
    }
    hs_scratch_t* whole_scratch() const {
        Scratch& tl = scratch_of_thread();
        if (tl.whole_serial != serial_) {
            literal_scratch();
            for (const auto& g : groups_)
                if (hs_alloc_scratch(g->database(), &tl.s) != HS_SUCCESS) throw std::bad_alloc();
            tl.whole_serial = serial_;
        }
        return tl.s;
    }

    std::vector<std::unique_ptr<Group>> groups_;
    const bool ascii_path_;
    const std::uint32_t compile_after_;  // uses of a check before RE2 compiles it
    const std::uint64_t serial_ = next_engine_serial.fetch_add(1);
};

}  // namespace

std::unique_ptr<TextEngine> compile_hyperscan_engine(const std::vector<TextPattern>& patterns, bool ascii_path,
                                                     bool eager_checks) {
    return std::make_unique<HyperscanEngine>(patterns, ascii_path, eager_checks);
}

std::uint64_t pattern_fingerprint(const std::vector<TextPattern>& patterns) {
    return fingerprint_of(patterns, 0, patterns.size());
}

std::uint64_t prefilter_fingerprint(const std::vector<TextPattern>& patterns) {
    return fingerprint_of(analyse_for_ascii(patterns, 0, patterns.size()));
}

namespace {

// Any x86-64 CPU Hyperscan runs on (SSSE3 and up), not only the build machine's.
hs_platform_info_t generic_platform() {
    hs_platform_info_t generic{};
    generic.tune = HS_TUNE_FAMILY_GENERIC;
    generic.cpu_features = 0;
    return generic;
}

std::string serialized(const Database& db) {
    char* bytes = nullptr;
    std::size_t size = 0;
    if (hs_serialize_database(db.get(), &bytes, &size) != HS_SUCCESS)
        throw RuleError("cannot serialize the rule database");
    std::string out(bytes, size);
    std::free(bytes);
    return out;
}

}  // namespace

std::string serialize_hyperscan_database(const std::vector<TextPattern>& patterns) {
    const hs_platform_info_t generic = generic_platform();
    return serialized(compile_group(patterns, 0, patterns.size(), &generic));
}

std::string serialize_prefilter_tables(const std::vector<TextPattern>& patterns) {
    return prefilter_to_bytes(analyse_for_ascii(patterns, 0, patterns.size()));
}

std::uint64_t prefilter_tables_fingerprint(const std::vector<TextPattern>& patterns) {
    return tables_fingerprint(patterns, 0, patterns.size());
}

std::string serialize_prefilter_database(const std::vector<TextPattern>& patterns) {
    const hs_platform_info_t generic = generic_platform();
    Database db = compile_literals(analyse_for_ascii(patterns, 0, patterns.size()), &generic);
    return db ? serialized(db) : std::string();
}

std::string hyperscan_version() {
    std::string v = hs_version();  // "5.4.0 2021-..."
    return v.substr(0, v.find(' '));
}

}  // namespace preflight
