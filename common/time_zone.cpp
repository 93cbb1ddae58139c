// TZif reading (RFC 8536): the version 2+ header and 64-bit data block; see time_zone.hpp.
#include "time_zone.hpp"

#include <algorithm>
#include <cstring>
#include <fstream>
#include <iterator>

namespace preflight {
namespace {

// Big-endian reader over the file's bytes; any read past the end marks it failed.
struct Reader {
    std::string_view data;
    std::size_t pos = 0;
    bool failed = false;

    std::uint64_t be(std::size_t n) {
        if (pos + n > data.size()) {
            failed = true;
            return 0;
        }
        std::uint64_t v = 0;
        for (std::size_t i = 0; i < n; ++i) v = v << 8 | static_cast<unsigned char>(data[pos + i]);
        pos += n;
        return v;
    }
    void skip(std::uint64_t n) {
        if (pos + n > data.size()) failed = true;
        else pos += n;
    }
};

struct Counts {
    std::uint64_t isut = 0, isstd = 0, leap = 0, time = 0, type = 0, chars = 0;
};

// The 44-byte header; false when it is not one.
bool read_header(Reader& r, char& version, Counts& c) {
    if (r.data.substr(r.pos, 4) != "TZif") return false;
    r.skip(4);
    version = r.pos < r.data.size() ? r.data[r.pos] : '\0';
    r.skip(16);
    c.isut = r.be(4), c.isstd = r.be(4), c.leap = r.be(4), c.time = r.be(4), c.type = r.be(4), c.chars = r.be(4);
    return !r.failed && c.type > 0 && c.type <= 256 && c.time < 100'000;
}

bool valid_name(std::string_view name) {
    if (name.empty() || name.front() == '/' || name.size() > 255) return false;
    if (name.find("..") != std::string_view::npos) return false;
    return std::all_of(name.begin(), name.end(), [](char ch) {
        return (ch >= 'A' && ch <= 'Z') || (ch >= 'a' && ch <= 'z') || (ch >= '0' && ch <= '9') || ch == '/' ||
               ch == '_' || ch == '-' || ch == '+' || ch == '.';
    });
}

constexpr std::int64_t kFatUntil = 2'100'000'000;  // 2036-07-18: fat files reach 2037

}  // namespace

TimeZone TimeZone::utc() {
    TimeZone z;
    z.name_ = "UTC";
    z.types_.push_back({0, "UTC"});
    return z;
}

std::optional<TimeZone> TimeZone::load(std::string_view name, std::string* why, const std::string& zoneinfo_dir) {
    auto fail = [&](std::string message) -> std::optional<TimeZone> {
        if (why) *why = std::move(message);
        return std::nullopt;
    };
    if (name == "UTC") return utc();
    if (!valid_name(name)) return fail("\"" + std::string(name) + "\" is not a time zone name (e.g. Europe/Berlin)");
    const std::string path = zoneinfo_dir + "/" + std::string(name);
    std::ifstream in(path, std::ios::binary);
    if (!in) return fail("unknown time zone " + std::string(name) + " (" + path + ": " + std::strerror(errno) + ")");
    std::string bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    Reader r{bytes};
    char version = 0;
    Counts c;
    if (!read_header(r, version, c)) return fail(path + " is not a TZif time zone file");
    if (version < '2') return fail(path + ": TZif version 1 only (64-bit data needed)");
    r.skip(c.time * 5 + c.type * 6 + c.chars + c.leap * 8 + c.isstd + c.isut);  // the 32-bit block
    if (r.failed || !read_header(r, version, c)) return fail(path + ": truncated TZif file");
    TimeZone z;
    z.name_ = std::string(name);
    for (std::uint64_t i = 0; i < c.time; ++i) z.transitions_.push_back(static_cast<std::int64_t>(r.be(8)));
    for (std::uint64_t i = 0; i < c.time; ++i) z.transition_type_.push_back(static_cast<std::uint8_t>(r.be(1)));
    std::vector<std::uint8_t> abbreviation_index;
    for (std::uint64_t i = 0; i < c.type; ++i) {
        Type t;
        t.offset = static_cast<std::int32_t>(static_cast<std::uint32_t>(r.be(4)));
        r.skip(1);  // isdst: the offset is what counts
        abbreviation_index.push_back(static_cast<std::uint8_t>(r.be(1)));
        z.types_.push_back(std::move(t));
    }
    const std::size_t chars_at = r.pos;
    r.skip(c.chars + c.leap * 12 + c.isstd + c.isut);
    if (r.failed) return fail(path + ": truncated TZif file");
    for (std::size_t i = 0; i < z.types_.size(); ++i) {
        if (abbreviation_index[i] >= c.chars) return fail(path + ": bad abbreviation index");
        std::string_view rest = std::string_view(bytes).substr(chars_at + abbreviation_index[i]);
        z.types_[i].abbreviation = std::string(rest.substr(0, std::min<std::size_t>(rest.find('\0'), c.chars)));
    }
    for (std::uint8_t t : z.transition_type_)
        if (t >= z.types_.size()) return fail(path + ": bad transition type");
    if (!std::is_sorted(z.transitions_.begin(), z.transitions_.end())) return fail(path + ": unsorted transitions");
    // The footer's POSIX TZ rule is not evaluated: refuse a "slim" file whose DST rule it holds.
    std::string_view footer = std::string_view(bytes).substr(std::min(r.pos, bytes.size()));
    bool rule_in_footer = footer.find(',') != std::string_view::npos;
    if (rule_in_footer && (z.transitions_.empty() || z.transitions_.back() < kFatUntil))
        return fail(path + ": a \"slim\" TZif file (its DST rules are only in the footer); install the fat files");
    return z;
}

std::size_t TimeZone::type_index_at(std::int64_t utc_s) const {
    auto it = std::upper_bound(transitions_.begin(), transitions_.end(), utc_s);
    if (it == transitions_.begin()) return 0;
    return transition_type_[static_cast<std::size_t>(it - transitions_.begin() - 1)];
}

std::int32_t TimeZone::offset_at(std::int64_t utc_s) const { return types_[type_index_at(utc_s)].offset; }

std::string TimeZone::abbreviation_at(std::int64_t utc_s) const { return types_[type_index_at(utc_s)].abbreviation; }

std::int64_t TimeZone::first_instant_at(std::int64_t local_s) const {
    // Offsets differ by less than a day around any instant, so the two offsets a day apart
    // are the candidates: the earliest candidate that maps back to local_s is the answer.
    const std::int32_t before = offset_at(local_s - 2 * 86400), after = offset_at(local_s + 2 * 86400);
    std::optional<std::int64_t> best;
    for (std::int32_t o : {before, after}) {
        std::int64_t u = local_s - o;
        if (to_local(u) == local_s && (!best || u < *best)) best = u;
    }
    if (best) return *best;
    // In a gap: the clock jumped from before local_s to after it; the jump's instant (the last
    // transition at or before local_s read with the old offset) is the first one at or after it.
    auto it = std::upper_bound(transitions_.begin(), transitions_.end(), local_s - before);
    return it == transitions_.begin() ? local_s - before : *std::prev(it);
}

}  // namespace preflight
