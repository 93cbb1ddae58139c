// Metrics of the preflight daemons in the Prometheus text exposition format (version 0.0.4).
//
// The hot path (a decision, a DNS query, a socketmap request) touches only Counter, Gauge and
// Histogram: relaxed atomic adds on memory the metric owns, no lock, no allocation. Everything
// else happens when /metrics is scraped: Registry::render() walks the registered metrics and
// writes the text. Labels are fixed when a metric is registered, so every label set is known at
// start-up (closed vocabularies: check names, reply codes, categories); a family whose label
// sets are many and mostly empty can instead produce its samples at render time (Registry::add_samples).
//
// Lifetime: the registry keeps references; the metrics must outlive it (and the HTTP server
// that renders it). Registration is thread-safe against rendering, but is meant for start-up.
#pragma once

#include <array>
#include <atomic>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <initializer_list>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace preflight::metrics {

class Counter {
public:
    void inc(std::uint64_t n = 1) noexcept { v_.fetch_add(n, std::memory_order_relaxed); }
    std::uint64_t value() const noexcept { return v_.load(std::memory_order_relaxed); }

private:
    std::atomic<std::uint64_t> v_{0};
};

class Gauge {
public:
    void add(std::int64_t n = 1) noexcept { v_.fetch_add(n, std::memory_order_relaxed); }
    void sub(std::int64_t n = 1) noexcept { v_.fetch_sub(n, std::memory_order_relaxed); }
    void set(std::int64_t n) noexcept { v_.store(n, std::memory_order_relaxed); }
    std::int64_t value() const noexcept { return v_.load(std::memory_order_relaxed); }

private:
    std::atomic<std::int64_t> v_{0};
};

// Adds one to a gauge for as long as it lives (something in flight).
class GaugeHold {
public:
    explicit GaugeHold(Gauge& g) noexcept : g_(g) { g_.add(); }
    ~GaugeHold() { g_.sub(); }
    GaugeHold(const GaugeHold&) = delete;
    GaugeHold& operator=(const GaugeHold&) = delete;

private:
    Gauge& g_;
};

// Fixed buckets of durations, in seconds. Bucket i counts observations <= bounds[i] and above
// bounds[i-1]; one more bucket (+Inf) takes the rest. render() makes them cumulative.
class Histogram {
public:
    static constexpr std::size_t kMaxBounds = 24;

    // Upper bounds in seconds, strictly increasing, positive, at most kMaxBounds; throws
    // std::invalid_argument otherwise.
    explicit Histogram(std::initializer_list<double> bounds_seconds);

    void observe(std::chrono::nanoseconds d) noexcept;

    struct Snapshot {
        std::vector<double> bounds;             // seconds
        std::vector<std::uint64_t> cumulative;  // one per bound, then +Inf (== count)
        std::uint64_t count = 0;
        double sum = 0;  // seconds
    };
    // Each bucket is read atomically; the whole is not one instant (count is taken from the
    // buckets, so it always equals the +Inf bucket).
    Snapshot snapshot() const;

private:
    std::array<std::int64_t, kMaxBounds> bounds_ns_{};
    std::array<double, kMaxBounds> bounds_{};
    std::size_t n_ = 0;
    std::array<std::atomic<std::uint64_t>, kMaxBounds + 1> counts_{};
    std::atomic<std::uint64_t> sum_ns_{0};
};

// Label name and value. Names: [a-zA-Z_][a-zA-Z0-9_]*; values: any text (escaped on output).
using Labels = std::vector<std::pair<std::string, std::string>>;

enum class Type { counter, gauge, histogram };
std::string_view to_string(Type t);

// One line of a family that produces its samples at render time.
struct Sample {
    Labels labels;
    double value = 0;
};

class Registry {
public:
    Registry();
    ~Registry();
    Registry(const Registry&) = delete;
    Registry& operator=(const Registry&) = delete;

    // Each adds one series to the family `name` (created with help and the type on first use;
    // a later use must have the same type). Throws std::invalid_argument for a bad metric or
    // label name, a type clash, or a label set the family already has.
    void add(std::string_view name, std::string_view help, const Counter& c, Labels labels = {});
    void add(std::string_view name, std::string_view help, const Gauge& g, Labels labels = {});
    void add(std::string_view name, std::string_view help, const Histogram& h, Labels labels = {});
    // A series whose value is read at render time (e.g. the entries of a cache), as a gauge or
    // a counter.
    void add_callback(std::string_view name, std::string_view help, Type type, std::function<double()> read,
                      Labels labels = {});
    // A family (counter or gauge) whose samples are produced at render time.
    void add_samples(std::string_view name, std::string_view help, Type type,
                     std::function<void(std::vector<Sample>&)> produce);

    // The text exposition format: per family "# HELP", "# TYPE", then its samples; families
    // in order of registration.
    std::string render() const;

private:
    struct Series;
    struct Family;
    Family& family(std::string_view name, std::string_view help, Type type);
    void add_series(std::string_view name, std::string_view help, Type type, Series s);

    mutable std::mutex mutex_;
    std::vector<std::unique_ptr<Family>> families_;
};

// The content type of render()'s text.
inline constexpr std::string_view kContentType = "text/plain; version=0.0.4; charset=utf-8";

// Helpers of the format, exposed for tests.
bool valid_metric_name(std::string_view name);
bool valid_label_name(std::string_view name);
std::string escape_label_value(std::string_view v);  // \\, \", \n
std::string format_value(double v);                  // shortest round-trip form; +Inf, -Inf, NaN

}  // namespace preflight::metrics
