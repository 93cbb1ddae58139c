#include "ascii_prefilter.hpp"

#include <algorithm>
#include <bitset>
#include <cwctype>
#include <locale.h>
#include <optional>
#include <unordered_map>

#include "utf8.hpp"

namespace preflight {
namespace {

// Sets of strings past this size are not spelt out (their parts still give literals).
constexpr std::size_t kMaxStrings = 16;
// A class of more characters than this (after case folding) is "any character".
constexpr std::size_t kMaxClassChars = 6;

// A string the pattern can match on ASCII text, with the \b it needs at either end (for the
// empty string, both flags are the one position).
struct Piece {
    std::string s;
    bool before = false, after = false;
    bool operator==(const Piece&) const = default;
    auto operator<=>(const Piece&) const = default;
};

// What is known of a part of a pattern on ASCII text. exact: every string it can match (empty:
// none). req, when exact is not known: one of these strings occurs in any match (empty: it
// cannot match); req_of() gives it for either.
struct Info {
    std::optional<std::vector<Piece>> exact;
    std::optional<std::vector<std::string>> req;
};

// Syntax this reader does not follow: the pattern is then checked on every text.
struct Unreadable {};

char lower(char c) { return c >= 'A' && c <= 'Z' ? static_cast<char>(c - 'A' + 'a') : c; }

// A letter outside ASCII that either engine may fold onto an ASCII one (RE2: the Kelvin sign and
// long s; the C.UTF-8 tables the Hyperscan engine folds with: dotted and dotless i).
bool may_fold_to_ascii(char32_t cp) {
    if (cp == 0x130 || cp == 0x131 || cp == 0x17F || cp == 0x212A || cp == 0x212B) return true;
    static const locale_t utf8 = newlocale(LC_CTYPE_MASK, "C.UTF-8", static_cast<locale_t>(nullptr));
    if (!utf8) return true;
    auto w = static_cast<wint_t>(cp);
    return towlower_l(w, utf8) < 0x80 || towupper_l(w, utf8) < 0x80;
}

std::optional<Piece> join(const Piece& a, const Piece& b) {
    if (a.s.empty()) {
        Piece r = b;
        if (b.s.empty()) r.before = r.after = a.before || b.before;
        else r.before = b.before || a.before;
        return r;
    }
    if (b.s.empty()) {
        Piece r = a;
        r.after = a.after || b.before;
        return r;
    }
    // A \b between two known bytes holds or fails whatever the text.
    if ((a.after || b.before) && ascii_word_byte(static_cast<unsigned char>(a.s.back())) ==
                                     ascii_word_byte(static_cast<unsigned char>(b.s.front())))
        return std::nullopt;
    Piece r{a.s, a.before, b.after};
    r.s += b.s;
    return r;
}

void dedupe(std::vector<Piece>& v) {
    std::sort(v.begin(), v.end());
    v.erase(std::unique(v.begin(), v.end()), v.end());
}

// Every string of a followed by one of b (a.size() * b.size() strings at most).
std::vector<Piece> cross(std::vector<Piece> a, const std::vector<Piece>& b) {
    if (b.size() == 1) {  // the common case, one character more: in place, still distinct
        std::vector<Piece> out;
        out.reserve(a.size());
        for (Piece& x : a)
            if (auto j = join(x, b.front())) out.push_back(std::move(*j));
        return out;
    }
    std::vector<Piece> out;
    for (const Piece& x : a)
        for (const Piece& y : b)
            if (auto j = join(x, y)) out.push_back(std::move(*j));
    dedupe(out);
    return out;
}

// The strings of an exact set as literals; none when one of them is empty (matches anywhere).
std::optional<std::vector<std::string>> literals_of(const std::vector<Piece>& exact) {
    std::vector<std::string> out;
    for (const Piece& p : exact) {
        if (p.s.empty()) return std::nullopt;
        out.push_back(p.s);
    }
    std::sort(out.begin(), out.end());
    out.erase(std::unique(out.begin(), out.end()), out.end());
    return out;
}

// Of two literal sets either of which would do, the one that nominates less often: an empty set
// (cannot match) first, then the longer shortest string, then fewer strings.
bool better(const std::vector<std::string>& a, const std::vector<std::string>& b) {
    if (a.empty() || b.empty()) return a.empty() && !b.empty();
    auto shortest = [](const std::vector<std::string>& v) {
        std::size_t m = v.front().size();
        for (const std::string& s : v) m = std::min(m, s.size());
        return m;
    };
    std::size_t sa = shortest(a), sb = shortest(b);
    return sa != sb ? sa > sb : a.size() < b.size();
}

void offer(std::optional<std::vector<std::string>>& best, const std::optional<std::vector<std::string>>& r) {
    if (r && (!best || better(*r, *best))) best = r;
}

Info exact_info(std::vector<Piece> pieces) {
    Info i;
    i.exact = std::move(pieces);
    return i;
}

std::optional<std::vector<std::string>> req_of(const Info& i) { return i.exact ? literals_of(*i.exact) : i.req; }

Info single_chars(const std::bitset<128>& lowered) {
    std::vector<Piece> pieces;
    for (std::size_t c = 0; c < 128; ++c)
        if (lowered[c]) pieces.push_back(Piece{std::string(1, static_cast<char>(c))});
    return exact_info(std::move(pieces));
}

class Reader {
public:
    explicit Reader(std::string_view p) : p_(p) {}

    Info pattern() {
        Info i = alternation();
        if (pos_ != p_.size()) throw Unreadable{};
        return i;
    }

    // The top level's alternatives, each read on its own, and where each is in the pattern.
    struct Branch {
        Info info;
        std::uint32_t begin, end;
    };
    std::vector<Branch> branches() {
        std::vector<Branch> out;
        for (;;) {
            const auto begin = static_cast<std::uint32_t>(pos_);
            Info info = sequence();
            out.push_back(Branch{std::move(info), begin, static_cast<std::uint32_t>(pos_)});
            if (pos_ >= p_.size() || p_[pos_] != '|') break;
            ++pos_;
        }
        if (pos_ != p_.size()) throw Unreadable{};
        return out;
    }

private:
    bool more() const { return pos_ < p_.size(); }
    char peek() const { return p_[pos_]; }

    Info alternation() {
        std::vector<Info> alts{sequence()};
        while (more() && peek() == '|') {
            ++pos_;
            alts.push_back(sequence());
        }
        if (alts.size() == 1) return std::move(alts.front());
        Info out;
        std::vector<Piece> all;
        bool exact = true;
        std::vector<std::string> req;
        bool req_known = true;
        for (Info& a : alts) {
            if (a.exact) all.insert(all.end(), a.exact->begin(), a.exact->end());
            else exact = false;
            if (auto r = req_of(a)) req.insert(req.end(), r->begin(), r->end());
            else req_known = false;
        }
        dedupe(all);
        if (exact && all.size() <= kMaxStrings) {
            out.exact = std::move(all);
            return out;
        }
        if (req_known) {
            std::sort(req.begin(), req.end());
            req.erase(std::unique(req.begin(), req.end()), req.end());
            out.req = std::move(req);
        }
        return out;
    }

    Info sequence() {
        std::vector<Piece> run{Piece{}};
        bool all_exact = true;
        std::optional<std::vector<std::string>> best;
        while (more() && peek() != '|' && peek() != ')') {
            if (plain_char()) {  // most of a pattern: appended in place, nothing allocated
                append(run, lower(p_[pos_++]));
                continue;
            }
            Info item = repeated();
            if (!item.exact) offer(best, item.req);
            if (item.exact) {
                if (run.size() * item.exact->size() <= kMaxStrings) {
                    run = cross(std::move(run), *item.exact);
                    continue;
                }
                offer(best, literals_of(run));
                run = *item.exact;
            } else {
                offer(best, literals_of(run));
                run = {Piece{}};
            }
            all_exact = false;
        }
        Info out;
        if (all_exact) {
            out.exact = std::move(run);
            return out;
        }
        offer(best, literals_of(run));
        out.req = std::move(best);
        return out;
    }

    // An ASCII character at pos_ that stands for itself and is not repeated.
    bool plain_char() const {
        auto c = static_cast<unsigned char>(p_[pos_]);
        if (c >= 0x80 || std::string_view("\\[](){}|.^$*+?").find(static_cast<char>(c)) != std::string_view::npos)
            return false;
        return pos_ + 1 >= p_.size() || std::string_view("*+?{").find(p_[pos_ + 1]) == std::string_view::npos;
    }

    // Each string of run followed by c (join() for a one-character piece).
    static void append(std::vector<Piece>& run, char c) {
        const bool word = ascii_word_byte(static_cast<unsigned char>(c));
        std::erase_if(run, [&](Piece& x) {
            if (x.s.empty()) {
                x.s.push_back(c);  // a \b here is now the string's "before"
                x.after = false;
                return false;
            }
            if (x.after && ascii_word_byte(static_cast<unsigned char>(x.s.back())) == word) return true;
            x.s.push_back(c);
            x.after = false;
            return false;
        });
    }

    Info repeated() {
        Info x = atom();
        if (!more()) return x;
        std::size_t min = 1, max = 1;
        char c = peek();
        if (c == '?' || c == '*' || c == '+') {
            ++pos_;
            min = c == '+' ? 1 : 0;
            max = c == '?' ? 1 : 2;  // 2: more than once
        } else if (c == '{' && !counted(min, max)) {
            return x;  // a '{' that is no repetition is a literal, read next
        } else if (c != '{') {
            return x;
        }
        if (more() && peek() == '?') ++pos_;  // non-greedy: the same strings
        if (more() && (peek() == '*' || peek() == '+' || peek() == '?' || peek() == '{')) throw Unreadable{};
        if (min == 1 && max == 1) return x;
        if (min >= 1) return Info{std::nullopt, req_of(x)};  // x at least once: its literals still occur
        Info out;                                            // may be absent: only an optional single copy is spelt out
        if (max == 1 && x.exact && x.exact->size() < kMaxStrings) {
            std::vector<Piece> e = *x.exact;
            e.push_back(Piece{});
            dedupe(e);
            out.exact = std::move(e);
        }
        return out;
    }

    // "{n}", "{n,}" or "{n,m}" at pos_: consumed, with min and max (2: more than once).
    bool counted(std::size_t& min, std::size_t& max) {
        std::size_t i = pos_ + 1, n = 0, digits = 0;
        while (i < p_.size() && p_[i] >= '0' && p_[i] <= '9' && digits < 4)
            n = n * 10 + std::size_t(p_[i++] - '0'), ++digits;
        if (!digits) return false;
        std::size_t m = n;
        if (i < p_.size() && p_[i] == ',') {
            ++i;
            std::size_t md = 0;
            m = 0;
            while (i < p_.size() && p_[i] >= '0' && p_[i] <= '9' && md < 4)
                m = m * 10 + std::size_t(p_[i++] - '0'), ++md;
            if (!md) m = 2;
        }
        if (i >= p_.size() || p_[i] != '}') return false;
        pos_ = i + 1;
        min = n;
        max = std::min<std::size_t>(m, 2);
        return true;
    }

    Info atom() {
        char c = peek();
        if (c == '(') return group();
        if (c == '[') return char_class();
        if (c == '\\') return escape();
        if (c == '*' || c == '+' || c == '?') throw Unreadable{};
        if (c == '.' || c == '^' || c == '$') {
            ++pos_;
            return Info{};  // any character, or an anchor: nothing known
        }
        auto u = static_cast<unsigned char>(c);
        if (u < 0x80) {
            ++pos_;
            return exact_info({Piece{std::string(1, lower(c))}});
        }
        char32_t cp = 0;
        std::size_t n = utf8_sequence(p_, pos_, &cp);
        if (n == 0) throw Unreadable{};
        pos_ += n;
        if (may_fold_to_ascii(cp)) return Info{};
        return exact_info({});  // a letter outside ASCII: never in ASCII text
    }

    Info group() {
        ++pos_;
        if (more() && peek() == '?') {
            ++pos_;
            if (more() && (peek() == 'P' || peek() == '<')) {  // (?P<name>...) (?<name>...)
                std::size_t gt = p_.find('>', pos_);
                if (gt == std::string_view::npos || (peek() == '<' && gt == pos_ + 1)) throw Unreadable{};
                pos_ = gt + 1;
            } else {
                // Flags: case folding is always on here, the others do not change the literals.
                while (more() && std::string_view("imsU-").find(peek()) != std::string_view::npos) ++pos_;
                if (!more()) throw Unreadable{};
                if (peek() == ')') {
                    ++pos_;
                    return exact_info({Piece{}});
                }
                if (peek() != ':') throw Unreadable{};
                ++pos_;
            }
        }
        Info inner = alternation();
        if (!more() || peek() != ')') throw Unreadable{};
        ++pos_;
        return inner;
    }

    Info escape() {
        if (pos_ + 1 >= p_.size()) throw Unreadable{};
        char e = p_[pos_ + 1];
        pos_ += 2;
        switch (e) {
        case 'b': return exact_info({Piece{"", true, true}});
        case 'B':
        case 'A':
        case 'z':
        case 'd':
        case 'D':
        case 'w':
        case 'W':
        case 's':
        case 'S':
        case 'C': return Info{};
        case 'n': return exact_info({Piece{"\n"}});
        case 't': return exact_info({Piece{"\t"}});
        case 'r': return exact_info({Piece{"\r"}});
        case 'f': return exact_info({Piece{"\f"}});
        case 'v': return exact_info({Piece{"\v"}});
        case 'a': return exact_info({Piece{"\a"}});
        default: break;
        }
        auto u = static_cast<unsigned char>(e);
        if (u < 0x80 && !ascii_word_byte(u)) return exact_info({Piece{std::string(1, e)}});
        throw Unreadable{};  // \p, \x, \Q, back-references...: not read here
    }

    // A member of a class: one character (code point), or an escape standing for a set.
    struct Member {
        char32_t cp = 0;
        bool any = false;  // stands for many characters (\d, \w, \s and the like)
    };

    Member class_member() {
        char c = peek();
        if (c == '\\') {
            if (pos_ + 1 >= p_.size()) throw Unreadable{};
            char e = p_[pos_ + 1];
            pos_ += 2;
            if (std::string_view("dDwWsS").find(e) != std::string_view::npos) return Member{0, true};
            if (e == 'n') return Member{'\n'};
            if (e == 't') return Member{'\t'};
            if (e == 'r') return Member{'\r'};
            if (e == 'f') return Member{'\f'};
            if (e == 'v') return Member{'\v'};
            auto u = static_cast<unsigned char>(e);
            if (u < 0x80 && !ascii_word_byte(u)) return Member{static_cast<char32_t>(u)};
            throw Unreadable{};
        }
        if (c == '[' && pos_ + 1 < p_.size() && p_[pos_ + 1] == ':') throw Unreadable{};  // [:alpha:]
        auto u = static_cast<unsigned char>(c);
        if (u < 0x80) {
            ++pos_;
            return Member{static_cast<char32_t>(u)};
        }
        char32_t cp = 0;
        std::size_t n = utf8_sequence(p_, pos_, &cp);
        if (n == 0) throw Unreadable{};
        pos_ += n;
        return Member{cp};
    }

    Info char_class() {
        ++pos_;
        bool negated = more() && peek() == '^';
        if (negated) ++pos_;
        std::bitset<128> set;
        bool many = false;  // a member too wide or too odd to spell out
        bool first = true;
        while (true) {
            if (!more()) throw Unreadable{};
            if (peek() == ']' && !first) break;
            first = false;
            Member lo = class_member();
            Member hi = lo;
            if (more() && peek() == '-' && pos_ + 1 < p_.size() && p_[pos_ + 1] != ']') {
                ++pos_;
                hi = class_member();
            }
            if (lo.any || hi.any) {
                many = true;
                continue;
            }
            if (hi.cp < lo.cp) throw Unreadable{};
            for (char32_t cp = lo.cp; cp <= hi.cp && cp < 0x80; ++cp) set.set(cp);
            if (hi.cp >= 0x80) {
                if (hi.cp - std::max<char32_t>(lo.cp, 0x80) > 4096) {
                    many = true;
                    continue;
                }
                for (char32_t cp = std::max<char32_t>(lo.cp, 0x80); cp <= hi.cp; ++cp)
                    if (may_fold_to_ascii(cp)) many = true;
            }
        }
        ++pos_;
        if (many) return Info{};
        for (char c = 'a'; c <= 'z'; ++c) {  // case-insensitive: a letter stands for both cases
            std::size_t l = static_cast<std::size_t>(c), u = static_cast<std::size_t>(c - 'a' + 'A');
            if (set[l] || set[u]) set.set(l).set(u);
        }
        if (negated) set.flip();
        std::bitset<128> lowered;
        for (std::size_t c = 0; c < 128; ++c)
            if (set[c]) lowered.set(static_cast<std::size_t>(static_cast<unsigned char>(lower(static_cast<char>(c)))));
        if (lowered.count() > kMaxClassChars) return Info{};
        return single_chars(lowered);
    }

    std::string_view p_;
    std::size_t pos_ = 0;
};

class Collector {
public:
    explicit Collector(AsciiPrefilter& out) : out_(out) {}

    void add(const std::string& s, PrefilterLiteral::Use use) {
        auto [it, fresh] = index_.emplace(s, out_.literals.size());
        if (fresh) out_.literals.push_back(PrefilterLiteral{s, {}});
        out_.literals[it->second].uses.push_back(use);
    }

private:
    AsciiPrefilter& out_;
    std::unordered_map<std::string, std::size_t> index_;
};

// Literals for one top-level alternative of pattern id, nominating check (when not exact); false
// when it gives none that would do.
bool add_branch(Collector& col, const Info& b, std::uint32_t id, std::uint32_t check) {
    if (b.exact && literals_of(*b.exact)) {
        for (const Piece& p : *b.exact) col.add(p.s, {id, true, p.before, p.after, 0});
        return true;
    }
    if (b.exact || !b.req) return false;  // an exact set with the empty string: matches anywhere
    for (const std::string& s : *b.req) col.add(s, {id, false, false, false, check});
    return true;
}

// "(?" other than a plain group "(?:" (also where it is an escaped "\\(?": checked whole anyway).
bool has_inline_flags(std::string_view t) {
    for (std::size_t k = t.find("(?"); k != std::string_view::npos; k = t.find("(?", k + 2))
        if (k + 2 >= t.size() || t[k + 2] != ':') return true;
    return false;
}

}  // namespace

AsciiPrefilter analyse_for_ascii(const std::vector<TextPattern>& patterns, std::size_t start, std::size_t end) {
    AsciiPrefilter out;
    Collector col(out);
    for (std::size_t i = start; i < end; ++i) {
        const auto id = static_cast<std::uint32_t>(i - start);
        const std::string& text = patterns[i].pattern;
        std::vector<Reader::Branch> branches;
        try {
            branches = Reader(text).branches();
        } catch (const Unreadable&) {
            out.always.push_back(id);
            continue;
        }
        // An inline flag ("(?i)", "(?s:") may reach over a '|': such a pattern is checked whole.
        const bool whole_only = has_inline_flags(text);
        // Every alternative must be covered, or the pattern is checked whole on every text;
        // literals already added for it then only cost a redundant nomination.
        bool covered = true;
        for (const Reader::Branch& b : branches) {
            const auto check = static_cast<std::uint32_t>(out.checks.size());
            if (whole_only) out.checks.push_back({id, 0, static_cast<std::uint32_t>(text.size())});
            else out.checks.push_back({id, b.begin, b.end});
            covered = add_branch(col, b.info, id, check) && covered;
        }
        if (!covered) out.always.push_back(id);
    }
    return out;
}

}  // namespace preflight

namespace preflight {
namespace {

void put32(std::string& out, std::uint32_t v) {
    for (int i = 0; i < 4; ++i) out.push_back(static_cast<char>((v >> (8 * i)) & 0xff));
}

// Reads from a cursor over bytes; every read checks the length first.
struct ByteReader {
    std::string_view b;
    bool ok = true;
    std::uint32_t u32() {
        if (b.size() < 4) return ok = false, 0;
        std::uint32_t v = 0;
        for (int i = 0; i < 4; ++i) v |= static_cast<std::uint32_t>(static_cast<unsigned char>(b[i])) << (8 * i);
        b.remove_prefix(4);
        return v;
    }
    std::string_view take(std::size_t n) {
        if (b.size() < n) return ok = false, std::string_view{};
        std::string_view v = b.substr(0, n);
        b.remove_prefix(n);
        return v;
    }
};

}  // namespace

std::string prefilter_to_bytes(const AsciiPrefilter& pf) {
    std::string out;
    put32(out, static_cast<std::uint32_t>(pf.literals.size()));
    for (const PrefilterLiteral& l : pf.literals) {
        put32(out, static_cast<std::uint32_t>(l.text.size()));
        out.append(l.text);
        put32(out, static_cast<std::uint32_t>(l.uses.size()));
        for (const PrefilterLiteral::Use& u : l.uses) {
            put32(out, u.pattern);
            out.push_back(
                static_cast<char>((u.exact ? 4 : 0) | (u.boundary_before ? 2 : 0) | (u.boundary_after ? 1 : 0)));
            put32(out, u.check);
        }
    }
    put32(out, static_cast<std::uint32_t>(pf.checks.size()));
    for (const PrefilterCheck& c : pf.checks) {
        put32(out, c.pattern);
        put32(out, c.begin);
        put32(out, c.end);
    }
    put32(out, static_cast<std::uint32_t>(pf.always.size()));
    for (std::uint32_t a : pf.always) put32(out, a);
    return out;
}

bool prefilter_from_bytes(std::string_view bytes, AsciiPrefilter& out) {
    ByteReader r{bytes};
    AsciiPrefilter pf;
    const std::uint32_t literals = r.u32();
    for (std::uint32_t i = 0; r.ok && i < literals; ++i) {
        PrefilterLiteral l;
        l.text = std::string(r.take(r.u32()));
        const std::uint32_t uses = r.u32();
        for (std::uint32_t k = 0; r.ok && k < uses; ++k) {
            const std::uint32_t pattern = r.u32();
            const std::string_view f = r.take(1);
            if (!r.ok) break;
            const auto flags = static_cast<unsigned char>(f[0]);
            const std::uint32_t check = r.u32();
            l.uses.push_back({pattern, (flags & 4) != 0, (flags & 2) != 0, (flags & 1) != 0, check});
        }
        pf.literals.push_back(std::move(l));
    }
    const std::uint32_t checks = r.u32();
    for (std::uint32_t i = 0; r.ok && i < checks; ++i) {
        PrefilterCheck c;
        c.pattern = r.u32();
        c.begin = r.u32();
        c.end = r.u32();
        pf.checks.push_back(c);
    }
    const std::uint32_t always = r.u32();
    for (std::uint32_t i = 0; r.ok && i < always; ++i) pf.always.push_back(r.u32());
    if (!r.ok || !r.b.empty()) return false;
    for (const PrefilterLiteral& l : pf.literals)
        for (const PrefilterLiteral::Use& u : l.uses)
            if (!u.exact && u.check >= pf.checks.size()) return false;
    for (const PrefilterCheck& c : pf.checks)
        if (c.begin > c.end) return false;
    out = std::move(pf);
    return true;
}

}  // namespace preflight
