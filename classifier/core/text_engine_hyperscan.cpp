// The Hyperscan engine: every pattern of a group in one database, scanned in one pass with no
// per-input construction (RE2's lazy DFA builds states for each text it has not seen, and every
// bounce is new text). Two groups at most: the site rule files, then the shipped ones.
#include "text_engine_impl.hpp"

#include <hs/hs.h>

#include <atomic>
#include <cstdlib>
#include <cwctype>
#include <locale.h>

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

std::uint64_t fingerprint_of(const std::vector<TextPattern>& patterns, std::size_t start, std::size_t end) {
    std::uint64_t h = 1469598103934665603ull;
    auto mix = [&h](std::string_view s) {
        for (char c : s) {
            h ^= static_cast<unsigned char>(c);
            h *= 1099511628211ull;
        }
        h ^= 0xff;  // separator: ("ab","c") differs from ("a","bc")
        h *= 1099511628211ull;
    };
    mix(std::to_string(kPatternFlags));
    for (std::size_t i = start; i < end; ++i) mix(patterns[i].pattern);
    return h;
}

// The built-in database of the shipped rules, when it was made from exactly these patterns.
Database embedded_database(const std::vector<TextPattern>& patterns, std::size_t start, std::size_t end) {
    const EmbeddedDatabase& e = kShippedHyperscanDatabase;
    if (e.size == 0 || fingerprint_of(patterns, start, end) != e.fingerprint) return nullptr;
    hs_database_t* db = nullptr;
    if (hs_deserialize_database(e.bytes, e.size, &db) != HS_SUCCESS) return nullptr;  // compiled instead
    return Database(db);
}

class HyperscanEngine final : public TextEngine {
public:
    explicit HyperscanEngine(const std::vector<TextPattern>& patterns) {
        for (std::size_t start = 0; start < patterns.size();) {
            std::size_t end = start;
            while (end < patterns.size() && patterns[end].shipped == patterns[start].shipped) ++end;
            Database db = patterns[start].shipped ? embedded_database(patterns, start, end) : nullptr;
            if (!db) db = compile_group(patterns, start, end, nullptr);
            groups_.push_back(Group{std::move(db), static_cast<std::uint32_t>(start)});
            start = end;
        }
    }

    std::size_t group_count() const override { return groups_.size(); }

    void scan(std::size_t g, std::string_view text, std::vector<std::uint32_t>& hits) const override {
        Hits ctx{&hits, groups_[g].first};
        std::string_view valid = valid_utf8(text);
        hs_scan(groups_[g].db.get(), valid.data(), static_cast<unsigned>(valid.size()), 0, thread_scratch(), on_match,
                &ctx);
    }

private:
    struct Group {
        Database db;
        std::uint32_t first;  // pattern index of the group's id 0
    };
    struct Hits {
        std::vector<std::uint32_t>* out;
        std::uint32_t first;
    };

    static int on_match(unsigned id, unsigned long long, unsigned long long, unsigned, void* ctx) {
        auto* h = static_cast<Hits*>(ctx);
        h->out->push_back(h->first + id);
        return 0;  // go on: every pattern that matches is wanted, HS_FLAG_SINGLEMATCH reports each once
    }

    // One scratch per thread, grown to fit every engine the thread has used; checked again only
    // when the thread meets another engine than the last one.
    hs_scratch_t* thread_scratch() const {
        struct Scratch {
            hs_scratch_t* s = nullptr;
            std::uint64_t serial = 0;
            ~Scratch() { hs_free_scratch(s); }
        };
        thread_local Scratch tl;
        if (tl.serial != serial_) {
            for (const Group& g : groups_)
                if (hs_alloc_scratch(g.db.get(), &tl.s) != HS_SUCCESS) throw std::bad_alloc();
            tl.serial = serial_;
        }
        return tl.s;
    }

    std::vector<Group> groups_;
    const std::uint64_t serial_ = next_engine_serial.fetch_add(1);
};

}  // namespace

std::unique_ptr<TextEngine> compile_hyperscan_engine(const std::vector<TextPattern>& patterns) {
    return std::make_unique<HyperscanEngine>(patterns);
}

std::uint64_t pattern_fingerprint(const std::vector<TextPattern>& patterns) {
    return fingerprint_of(patterns, 0, patterns.size());
}

std::string serialize_hyperscan_database(const std::vector<TextPattern>& patterns) {
    // Any x86-64 CPU Hyperscan runs on (SSSE3 and up), not only the build machine's.
    hs_platform_info_t generic{};
    generic.tune = HS_TUNE_FAMILY_GENERIC;
    generic.cpu_features = 0;
    Database db = compile_group(patterns, 0, patterns.size(), &generic);
    char* bytes = nullptr;
    std::size_t size = 0;
    if (hs_serialize_database(db.get(), &bytes, &size) != HS_SUCCESS)
        throw RuleError("cannot serialize the rule database");
    std::string out(bytes, size);
    std::free(bytes);
    return out;
}

std::string hyperscan_version() {
    std::string v = hs_version();  // "5.4.0 2021-..."
    return v.substr(0, v.find(' '));
}

}  // namespace preflight
