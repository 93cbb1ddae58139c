// `preflight-classify suppress list|add|remove|import|export|stats`: the operator's view of the
// suppression list in the conf's SuppressionStore. Every action reads or writes the store at
// once; the milter reads it on every RCPT TO, so a removal takes effect on the next one.
#include "suppress_command.hpp"

#include <unistd.h>

#include <chrono>
#include <ctime>
#include <fstream>
#include <iostream>
#include <sstream>

#include "arg_parser.hpp"
#include "ascii.hpp"
#include "command_common.hpp"
#include "delivery_writers.hpp"
#include "duration.hpp"
#include "output.hpp"
#include "suppress_sources.hpp"

namespace preflight {
namespace {

const char kUsage[] =
    "usage: preflight-classify suppress [--conf FILE] ACTION [OPTIONS]\n"
    "  list     [--format csv|json] [--raw] [FILTERS]   the suppressed recipients\n"
    "  export   [--format csv|json] [FILTERS]           every entry, soft failures being counted\n"
    "                                                   included, as import reads it back\n"
    "  import   [--format csv|json] [FILE|-]            entries as export writes them\n"
    "  add      RECIPIENT [--scope DOMAIN|*] [--reason TEXT] [--expires TIME]\n"
    "  remove   RECIPIENT [--scope DOMAIN|*]            every scope unless --scope\n"
    "  stats    [--format text|json]                    entries by reason, adds by source,\n"
    "                                                   sender faults by domain\n"
    "  FILTERS: --scope DOMAIN|*  --reason CATEGORY  --recipient ADDRESS\n"
    "           --since DATE  --until DATE (last seen; YYYY-MM-DD or YYYY-MM-DDTHH:MM:SSZ, UTC)\n"
    "           --all (also expired entries and soft failures still being counted)\n"
    "  --conf FILE  preflight.conf naming SuppressionStore (default /etc/preflight/preflight.conf)\n"
    "exit: 0 done, 1 the store failed or an import line was bad (FILE:LINE), 2 usage or conf error\n";

constexpr const char* kColumns[] = {"recipient",  "scope",     "reason", "reply",   "remote_mta", "source",
                                    "first_seen", "last_seen", "count",  "expires", "active"};
constexpr std::size_t kColumnCount = std::size(kColumns);
constexpr std::size_t kImportBatch = 10'000;  // entries per store transaction

struct Options {
    std::string conf = kDefaultConf;
    std::string action, format, recipient_arg, input = "-";
    std::string reason_text;
    std::int64_t expires_seconds = -1;  // add: -1 SuppressionExpiry
    SuppressionFilter filter;
    bool raw = false;
    std::vector<std::string> positionals;
};

std::int64_t unix_now() { return static_cast<std::int64_t>(std::time(nullptr)); }

std::vector<std::string> entry_fields(const SuppressionEntry& e) {
    return {e.recipient,
            e.scope,
            e.category,
            e.reply,
            e.remote_mta,
            std::string(to_string(e.source)),
            utc_time(e.first_seen),
            utc_time(e.last_seen),
            std::to_string(e.count),
            e.expires ? utc_time(e.expires) : std::string(),
            e.active ? "yes" : "no"};
}

void append_entry(std::string& out, const SuppressionEntry& e, bool json, CsvCells cells) {
    std::vector<std::string> f = entry_fields(e);
    if (!json) {
        for (std::size_t i = 0; i < f.size(); ++i) {
            if (i) out += ',';
            append_csv_field(out, f[i], cells);
        }
        out += "\r\n";
        return;
    }
    out += '{';
    for (std::size_t i = 0; i < f.size(); ++i) {
        if (i) out += ',';
        append_json_string(out, kColumns[i]);
        out += ':';
        if (i == 8) out += f[i];
        else if (i == 10) out += e.active ? "true" : "false";
        else if (i == 9 && !e.expires) out += "null";
        else append_json_string(out, f[i]);
    }
    out += "}\n";
}

// ---- import: CSV (RFC 4180, as export writes it) and JSON Lines of flat objects --------------

// One CSV record from text at pos (quoted fields may hold line breaks); false at the end.
bool next_csv_record(std::string_view text, std::size_t& pos, std::vector<std::string>& fields, int& line) {
    fields.clear();
    if (pos >= text.size()) return false;
    std::string cur;
    bool quoted = false;
    while (pos < text.size()) {
        char c = text[pos++];
        if (quoted) {
            if (c == '"' && pos < text.size() && text[pos] == '"') cur += text[pos++];
            else if (c == '"') quoted = false;
            else {
                if (c == '\n') ++line;
                cur += c;
            }
        } else if (c == '"') {
            quoted = true;
        } else if (c == ',') {
            fields.push_back(std::move(cur));
            cur.clear();
        } else if (c == '\n') {
            ++line;
            break;
        } else if (c != '\r') {
            cur += c;
        }
    }
    fields.push_back(std::move(cur));
    return true;
}

// A flat JSON object of strings, integers, booleans and null into kColumns order; false with why.
bool parse_json_line(std::string_view s, std::vector<std::string>& fields, std::string& why) {
    fields.assign(kColumnCount, {});
    std::size_t i = 0;
    auto skip = [&] {
        while (i < s.size() && ascii::is_space(s[i])) ++i;
    };
    auto string_at = [&](std::string& out) -> bool {
        if (i >= s.size() || s[i] != '"') return false;
        for (++i; i < s.size() && s[i] != '"'; ++i) {
            if (s[i] != '\\') {
                out += s[i];
                continue;
            }
            if (++i >= s.size()) return false;
            char e = s[i];
            if (e == 'n') out += '\n';
            else if (e == 't') out += '\t';
            else if (e == 'r') out += '\r';
            else if (e == 'u' && i + 4 < s.size()) {
                unsigned v = std::stoul(std::string(s.substr(i + 1, 4)), nullptr, 16);
                out += v < 0x80 ? static_cast<char>(v) : '?';
                i += 4;
            } else out += e;
        }
        if (i >= s.size()) return false;
        ++i;
        return true;
    };
    skip();
    if (i >= s.size() || s[i++] != '{') return why = "not a JSON object", false;
    for (;;) {
        skip();
        if (i < s.size() && s[i] == '}') break;
        std::string key, value;
        if (!string_at(key)) return why = "expected a quoted name", false;
        skip();
        if (i >= s.size() || s[i++] != ':') return why = "expected ':' after \"" + key + "\"", false;
        skip();
        if (i < s.size() && s[i] == '"') {
            if (!string_at(value)) return why = "unterminated string", false;
        } else {
            std::size_t start = i;
            while (i < s.size() && s[i] != ',' && s[i] != '}' && !ascii::is_space(s[i])) ++i;
            value = std::string(s.substr(start, i - start));
            if (value == "null") value.clear();
            else if (value == "true") value = "yes";
            else if (value == "false") value = "no";
        }
        for (std::size_t c = 0; c < kColumnCount; ++c)
            if (key == kColumns[c]) fields[c] = value;
        skip();
        if (i < s.size() && s[i] == ',') {
            ++i;
            continue;
        }
        if (i < s.size() && s[i] == '}') break;
        return why = "expected ',' or '}'", false;
    }
    return true;
}

// The entry of one import record (kColumns order); false with why naming the field.
bool entry_from_fields(const std::vector<std::string>& f, SuppressionEntry& e, std::string& why) {
    if (f.size() != kColumnCount) return why = std::to_string(f.size()) + " fields, want 11", false;
    e.recipient = normalise_recipient(f[0]);
    if (e.recipient.empty()) return why = "recipient: \"" + f[0] + "\" is not an address", false;
    e.scope = f[1] == "*" ? f[1] : ascii::to_lower(f[1]);
    if (e.scope.empty()) return why = "scope: empty (a sender domain or *)", false;
    e.category = sanitise_remote_text(f[2], 40);
    e.reply = sanitise_remote_text(f[3]);
    e.remote_mta = sanitise_remote_text(f[4], 100);
    auto source = parse_suppression_source(f[5]);
    if (!source) return why = "source: \"" + f[5] + "\" is not log, bounce, complaint or manual", false;
    e.source = *source;
    auto first = parse_utc(f[6]), last = parse_utc(f[7]);
    if (!first) return why = "first_seen: \"" + f[6] + "\" is not a UTC time (2026-11-03T10:00:00Z)", false;
    if (!last) return why = "last_seen: \"" + f[7] + "\" is not a UTC time", false;
    e.first_seen = *first;
    e.last_seen = *last;
    try {
        e.count = static_cast<std::uint32_t>(std::stoul(f[8]));
    } catch (...) {
        return why = "count: \"" + f[8] + "\" is not a number", false;
    }
    if (f[9].empty()) e.expires = 0;
    else if (auto x = parse_utc(f[9])) e.expires = *x;
    else return why = "expires: \"" + f[9] + "\" is not a UTC time or empty", false;
    if (f[10] != "yes" && f[10] != "no") return why = "active: \"" + f[10] + "\" is not yes or no", false;
    e.active = f[10] == "yes";
    return true;
}

int run_import(const Options& o, SuppressionStore& store) {
    std::string text;
    if (o.input == "-") {
        std::ostringstream ss;
        ss << std::cin.rdbuf();
        text = ss.str();
    } else {
        std::ifstream in(o.input, std::ios::binary);
        if (!in) {
            std::cerr << "preflight-classify suppress: " << o.input << ": cannot be read\n";
            return 1;
        }
        std::ostringstream ss;
        ss << in.rdbuf();
        text = ss.str();
    }
    const std::string name = o.input == "-" ? "stdin" : o.input;
    const bool json = o.format == "json";
    std::size_t pos = 0, imported = 0, bad = 0;
    int line = 0;
    std::vector<std::string> fields;
    std::vector<SuppressionEntry> batch;
    auto flush = [&] {
        std::string error;
        if (!batch.empty() && !store.put_many(batch, &error)) {
            std::cerr << "preflight-classify suppress: " << error << "\n";
            return false;
        }
        imported += batch.size();
        batch.clear();
        return true;
    };
    for (;;) {
        const int at = line + 1;
        std::string why;
        if (json) {
            if (pos >= text.size()) break;
            std::size_t nl = text.find('\n', pos);
            std::string_view l(text.data() + pos, (nl == std::string::npos ? text.size() : nl) - pos);
            pos = nl == std::string::npos ? text.size() : nl + 1;
            ++line;
            if (ascii::trim(l).empty()) continue;
            if (!parse_json_line(l, fields, why)) fields.clear();
        } else if (!next_csv_record(text, pos, fields, line)) {
            break;
        }
        if (!json && at == 1 && !fields.empty() && fields[0] == "recipient") continue;  // the header
        if (!json && fields.size() == 1 && fields[0].empty()) continue;                 // a blank line
        SuppressionEntry e;
        if (why.empty() && entry_from_fields(fields, e, why)) {
            batch.push_back(std::move(e));
            if (batch.size() >= kImportBatch && !flush()) return 1;
            continue;
        }
        if (++bad <= 10) std::cerr << "preflight-classify suppress: " << name << ":" << at << ": " << why << "\n";
    }
    if (!flush()) return 1;
    std::cerr << "preflight-classify suppress: " << imported << " imported, " << bad << " bad\n";
    return bad ? 1 : 0;
}

int run_list(const Options& o, SuppressionStore& store, bool export_all) {
    SuppressionFilter f = o.filter;
    if (export_all) f.include_pending = true;
    std::string error;
    auto entries = store.list(f, unix_now(), &error);
    if (!entries) {
        std::cerr << "preflight-classify suppress: " << error << "\n";
        return 1;
    }
    const bool json = o.format == "json";
    const CsvCells cells = export_all || o.raw ? CsvCells::raw : CsvCells::neutralised;
    std::string out;
    if (!json) {
        for (std::size_t i = 0; i < kColumnCount; ++i) out.append(i ? "," : "").append(kColumns[i]);
        out += "\r\n";
    }
    for (const SuppressionEntry& e : *entries) {
        append_entry(out, e, json, cells);
        if (out.size() > 256 * 1024 && !write_all(out)) return 1;
    }
    return write_all(out) ? 0 : 1;
}

int run_stats(const Options& o, SuppressionStore& store) {
    std::string error;
    auto st = store.stats(unix_now(), &error);
    if (!st) {
        std::cerr << "preflight-classify suppress: " << error << "\n";
        return 1;
    }
    std::string out;
    auto group = [&](const char* name, const std::vector<std::pair<std::string, std::uint64_t>>& v) {
        if (o.format == "json") {
            append_json_string(out, name);
            out += ":{";
            for (std::size_t i = 0; i < v.size(); ++i) {
                if (i) out += ',';
                append_json_string(out, v[i].first);
                out += ':' + std::to_string(v[i].second);
            }
            out += '}';
            return;
        }
        out.append(name).append(":\n");
        if (v.empty()) out += "  (none)\n";
        for (const auto& [k, n] : v) out.append("  ").append(k).append(" ").append(std::to_string(n)).append("\n");
    };
    if (o.format == "json") out += '{';
    group("entries_by_reason", st->entries_by_reason);
    if (o.format == "json") out += ',';
    group("adds_by_source", st->adds_by_source);
    if (o.format == "json") out += ',';
    group("sender_faults", st->sender_faults);
    if (o.format == "json") out += "}\n";
    return write_all(out) ? 0 : 1;
}

int run_add(const Options& o, SuppressionStore& store, const Config& cfg) {
    SuppressionEntry e;
    e.recipient = normalise_recipient(o.recipient_arg);
    if (e.recipient.empty())
        return std::cerr << "preflight-classify suppress: \"" << o.recipient_arg << "\" is not an address\n", 2;
    e.scope = o.filter.scope.empty() ? std::string(kGlobalScope) : o.filter.scope;
    e.category = "manual";
    e.reply = sanitise_remote_text(o.reason_text);
    e.source = SuppressionSource::manual;
    e.first_seen = e.last_seen = unix_now();
    e.count = 1;
    e.active = true;
    const Settings& s = cfg.for_sender_domain(e.scope == kGlobalScope ? std::string_view() : e.scope);
    std::int64_t life = o.expires_seconds >= 0 ? o.expires_seconds : s.suppression_expiry.count() / 1000;
    e.expires = life > 0 ? e.first_seen + life : 0;
    std::string error;
    if (!store.put(e, &error)) return std::cerr << "preflight-classify suppress: " << error << "\n", 1;
    std::cout << e.recipient << " suppressed for " << (e.scope == kGlobalScope ? "every sender" : e.scope)
              << (e.expires ? " until " + utc_time(e.expires) : std::string()) << "\n";
    return 0;
}

int run_remove(const Options& o, SuppressionStore& store) {
    std::string recipient = normalise_recipient(o.recipient_arg);
    if (recipient.empty())
        return std::cerr << "preflight-classify suppress: \"" << o.recipient_arg << "\" is not an address\n", 2;
    std::string error;
    auto n = store.remove(o.filter.scope, recipient, &error);
    if (!n) return std::cerr << "preflight-classify suppress: " << error << "\n", 1;
    std::cout << recipient << ": " << *n << " entr" << (*n == 1 ? "y" : "ies") << " removed\n";
    return 0;
}

std::optional<int> parse_options(const std::vector<std::string>& args, Options& o) {
    using Why = std::optional<std::string>;
    auto date = [](std::int64_t& out) {
        return [&out](const std::string& v) -> Why {
            auto t = parse_utc(v);
            if (!t) return "want YYYY-MM-DD or YYYY-MM-DDTHH:MM:SSZ (UTC)";
            out = *t;
            return std::nullopt;
        };
    };
    ArgParser parser("suppress", kUsage);
    parser.option({"--conf"}, store_in(o.conf))
        .option({"--format"},
                [&](const std::string& v) -> Why {
                    if (v != "csv" && v != "json" && v != "text") return "want csv, json or text";
                    o.format = v;
                    return std::nullopt;
                })
        .option({"--scope"},
                [&](const std::string& v) -> Why {
                    if (v.empty()) return "want a sender domain or *";
                    o.filter.scope = v == "*" ? v : ascii::to_lower(v);
                    return std::nullopt;
                })
        .option({"--reason"},
                [&](const std::string& v) -> Why {
                    o.filter.category = v;
                    o.reason_text = v;
                    return std::nullopt;
                })
        .option({"--recipient"},
                [&](const std::string& v) -> Why {
                    o.filter.recipient = normalise_recipient(v);
                    if (o.filter.recipient.empty()) return "want an address";
                    return std::nullopt;
                })
        .option({"--since"}, date(o.filter.since))
        .option({"--until"}, date(o.filter.until))
        .option({"--expires"},
                [&](const std::string& v) -> Why {
                    if (v == "never") return o.expires_seconds = 0, std::nullopt;
                    auto d = parse_duration(v, BareNumber::days);
                    if (!d || d->count() < 1000) return "want a time such as 30d or 12h, or never";
                    o.expires_seconds = d->count() / 1000;
                    return std::nullopt;
                })
        .flag({"--all"},
              [&] {
                  o.filter.include_pending = true;
                  o.filter.include_expired = true;
              })
        .flag({"--raw"}, [&] { o.raw = true; })
        .positional([&](const std::string& p) { o.positionals.push_back(p); });
    if (auto status = parser.parse(args)) return *status;
    if (o.positionals.empty()) return parser.error("want an action: list, add, remove, import, export or stats");
    o.action = o.positionals.front();
    const std::size_t extra = o.positionals.size() - 1;
    if (o.action == "add" || o.action == "remove") {
        if (extra != 1) return parser.error(o.action + " wants one RECIPIENT");
        o.recipient_arg = o.positionals[1];
    } else if (o.action == "import") {
        if (extra > 1) return parser.error("import reads one FILE (or - for stdin)");
        if (extra == 1) o.input = o.positionals[1];
    } else if (o.action == "list" || o.action == "export" || o.action == "stats") {
        if (extra) return parser.error(o.action + " takes no argument '" + o.positionals[1] + "'");
    } else {
        return parser.error("unknown action '" + o.action + "': want list, add, remove, import, export or stats");
    }
    if (o.format.empty()) o.format = o.action == "stats" ? "text" : "csv";
    if (o.action == "stats" && o.format == "csv") return parser.error("stats: --format text or json");
    if (o.action != "stats" && o.format == "text") return parser.error(o.action + ": --format csv or json");
    return std::nullopt;
}

}  // namespace

int run_suppress_command(const std::vector<std::string>& args) {
    Options o;
    if (auto status = parse_options(args, o)) return *status;
    std::string error;
    std::unique_ptr<SuppressionFeed> feed = open_suppression_feed(o.conf, error);
    if (!feed) {
        std::cerr << "preflight-classify: " << error << "\n";
        return 2;
    }
    SuppressionStore& store = feed->store();
    if (o.action == "list") return run_list(o, store, false);
    if (o.action == "export") return run_list(o, store, true);
    if (o.action == "import") return run_import(o, store);
    if (o.action == "stats") return run_stats(o, store);
    if (o.action == "add") return run_add(o, store, feed->config());
    return run_remove(o, store);
}

}  // namespace preflight
