#include "metrics.hpp"

#include <charconv>
#include <cmath>
#include <stdexcept>
#include <variant>

namespace preflight::metrics {

// ---- Histogram

Histogram::Histogram(std::initializer_list<double> bounds_seconds) {
    if (bounds_seconds.size() > kMaxBounds) throw std::invalid_argument("histogram: too many buckets");
    double prev = 0;
    for (double b : bounds_seconds) {
        if (!(b > prev) || !std::isfinite(b)) throw std::invalid_argument("histogram: bounds must increase");
        bounds_[n_] = b;
        bounds_ns_[n_] = static_cast<std::int64_t>(std::llround(b * 1e9));
        prev = b;
        ++n_;
    }
}

void Histogram::observe(std::chrono::nanoseconds d) noexcept {
    const std::int64_t ns = d.count() < 0 ? 0 : d.count();
    std::size_t i = 0;
    while (i < n_ && ns > bounds_ns_[i]) ++i;  // a handful of bounds: a linear scan is cheapest
    counts_[i].fetch_add(1, std::memory_order_relaxed);
    sum_ns_.fetch_add(static_cast<std::uint64_t>(ns), std::memory_order_relaxed);
}

Histogram::Snapshot Histogram::snapshot() const {
    Snapshot s;
    s.bounds.assign(bounds_.begin(), bounds_.begin() + static_cast<std::ptrdiff_t>(n_));
    std::uint64_t total = 0;
    for (std::size_t i = 0; i <= n_; ++i) {
        total += counts_[i].load(std::memory_order_relaxed);
        s.cumulative.push_back(total);
    }
    s.count = total;
    s.sum = static_cast<double>(sum_ns_.load(std::memory_order_relaxed)) / 1e9;
    return s;
}

// ---- format helpers

std::string_view to_string(Type t) {
    switch (t) {
    case Type::counter: return "counter";
    case Type::gauge: return "gauge";
    case Type::histogram: return "histogram";
    }
    return "untyped";
}

namespace {

bool name_char(char c, bool first, bool colon) {
    bool alpha = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_' || (colon && c == ':');
    return alpha || (!first && c >= '0' && c <= '9');
}

bool valid_name(std::string_view name, bool colon) {
    if (name.empty()) return false;
    for (std::size_t i = 0; i < name.size(); ++i)
        if (!name_char(name[i], i == 0, colon)) return false;
    return true;
}

std::string escape_help(std::string_view v) {
    std::string out;
    out.reserve(v.size());
    for (char c : v) {
        if (c == '\\') out += "\\\\";
        else if (c == '\n') out += "\\n";
        else out += c;
    }
    return out;
}

}  // namespace

bool valid_metric_name(std::string_view name) { return valid_name(name, true); }

bool valid_label_name(std::string_view name) { return valid_name(name, false) && !name.starts_with("__"); }

std::string escape_label_value(std::string_view v) {
    std::string out;
    out.reserve(v.size());
    for (char c : v) {
        if (c == '\\') out += "\\\\";
        else if (c == '"') out += "\\\"";
        else if (c == '\n') out += "\\n";
        else out += c;
    }
    return out;
}

std::string format_value(double v) {
    if (std::isnan(v)) return "NaN";
    if (std::isinf(v)) return v > 0 ? "+Inf" : "-Inf";
    char buf[64];
    auto [end, ec] = std::to_chars(buf, buf + sizeof buf, v);
    if (ec != std::errc()) return "NaN";
    return std::string(buf, end);
}

// ---- Registry

struct Registry::Series {
    std::string labels;  // rendered: name="value",... without braces; "" for none
    std::variant<const Counter*, const Gauge*, const Histogram*, std::function<double()>,
                 std::function<void(std::vector<Sample>&)>>
        source;
};

struct Registry::Family {
    std::string name, help;
    Type type;
    std::vector<Series> series;
};

Registry::Registry() = default;
Registry::~Registry() = default;

namespace {

std::string render_labels(const Labels& labels) {
    std::string out;
    for (const auto& [k, v] : labels) {
        if (!valid_label_name(k) || k == "le") throw std::invalid_argument("metrics: bad label name '" + k + "'");
        if (!out.empty()) out += ',';
        out += k;
        out += "=\"";
        out += escape_label_value(v);
        out += '"';
    }
    return out;
}

// name{labels} value\n, with extra (already rendered) appended to the labels.
void sample_line(std::string& out, std::string_view name, std::string_view suffix, std::string_view labels,
                 std::string_view extra, std::string_view value) {
    out += name;
    out += suffix;
    if (!labels.empty() || !extra.empty()) {
        out += '{';
        out += labels;
        if (!labels.empty() && !extra.empty()) out += ',';
        out += extra;
        out += '}';
    }
    out += ' ';
    out += value;
    out += '\n';
}

}  // namespace

Registry::Family& Registry::family(std::string_view name, std::string_view help, Type type) {
    if (!valid_metric_name(name)) throw std::invalid_argument("metrics: bad metric name '" + std::string(name) + "'");
    for (auto& f : families_) {
        if (f->name != name) continue;
        if (f->type != type)
            throw std::invalid_argument("metrics: " + std::string(name) + " registered with another type");
        return *f;
    }
    auto f = std::make_unique<Family>();
    f->name = std::string(name);
    f->help = std::string(help);
    f->type = type;
    families_.push_back(std::move(f));
    return *families_.back();
}

void Registry::add_series(std::string_view name, std::string_view help, Type type, Series s) {
    std::lock_guard lock(mutex_);
    Family& f = family(name, help, type);
    for (const Series& other : f.series)
        if (other.labels == s.labels)
            throw std::invalid_argument("metrics: " + f.name + "{" + s.labels + "} registered twice");
    f.series.push_back(std::move(s));
}

void Registry::add(std::string_view name, std::string_view help, const Counter& c, Labels labels) {
    add_series(name, help, Type::counter, Series{render_labels(labels), &c});
}

void Registry::add(std::string_view name, std::string_view help, const Gauge& g, Labels labels) {
    add_series(name, help, Type::gauge, Series{render_labels(labels), &g});
}

void Registry::add(std::string_view name, std::string_view help, const Histogram& h, Labels labels) {
    add_series(name, help, Type::histogram, Series{render_labels(labels), &h});
}

void Registry::add_callback(std::string_view name, std::string_view help, Type type, std::function<double()> read,
                            Labels labels) {
    if (type == Type::histogram) throw std::invalid_argument("metrics: a callback cannot be a histogram");
    add_series(name, help, type, Series{render_labels(labels), std::move(read)});
}

void Registry::add_samples(std::string_view name, std::string_view help, Type type,
                           std::function<void(std::vector<Sample>&)> produce) {
    if (type == Type::histogram) throw std::invalid_argument("metrics: samples cannot be a histogram");
    // Its own label sets: distinct from those of other series only by convention; give such a
    // family no other series.
    add_series(name, help, type, Series{"\x01samples", std::move(produce)});
}

std::string Registry::render() const {
    std::lock_guard lock(mutex_);
    std::string out;
    out.reserve(4096);
    std::vector<Sample> samples;
    for (const auto& f : families_) {
        out += "# HELP ";
        out += f->name;
        out += ' ';
        out += escape_help(f->help);
        out += "\n# TYPE ";
        out += f->name;
        out += ' ';
        out += to_string(f->type);
        out += '\n';
        for (const Series& s : f->series) {
            if (auto c = std::get_if<const Counter*>(&s.source)) {
                sample_line(out, f->name, "", s.labels, "", std::to_string((*c)->value()));
            } else if (auto g = std::get_if<const Gauge*>(&s.source)) {
                sample_line(out, f->name, "", s.labels, "", std::to_string((*g)->value()));
            } else if (auto h = std::get_if<const Histogram*>(&s.source)) {
                Histogram::Snapshot snap = (*h)->snapshot();
                for (std::size_t i = 0; i < snap.cumulative.size(); ++i) {
                    std::string le = "le=\"";
                    le += i < snap.bounds.size() ? format_value(snap.bounds[i]) : std::string("+Inf");
                    le += '"';
                    sample_line(out, f->name, "_bucket", s.labels, le, std::to_string(snap.cumulative[i]));
                }
                sample_line(out, f->name, "_sum", s.labels, "", format_value(snap.sum));
                sample_line(out, f->name, "_count", s.labels, "", std::to_string(snap.count));
            } else if (auto read = std::get_if<std::function<double()>>(&s.source)) {
                sample_line(out, f->name, "", s.labels, "", format_value((*read)()));
            } else if (auto produce = std::get_if<std::function<void(std::vector<Sample>&)>>(&s.source)) {
                samples.clear();
                (*produce)(samples);
                for (const Sample& x : samples)
                    sample_line(out, f->name, "", render_labels(x.labels), "", format_value(x.value));
            }
        }
    }
    return out;
}

}  // namespace preflight::metrics
