// The embedded quota store: SQLite (libsqlite3 from Debian).
//
// Why SQLite rather than LMDB: a check-and-add over up to 60 buckets per counter is one SQL
// transaction (BEGIN IMMEDIATE takes the file's write lock, so several milter processes on one
// host can share the file and stay exact); WAL with synchronous=NORMAL survives a killed process
// (and a power cut loses at most the last moments, never the file); operators can read the
// counters with the sqlite3 shell; and there is no map size to tune or stale reader slots to
// clear as with LMDB. The price is a few microseconds per recipient more than LMDB would cost,
// measured in tests/bench/bench_quota.cpp.
//
// One table, quota(counter, bucket, n), keyed (counter, bucket), WITHOUT ROWID so a counter's
// buckets are adjacent in the B-tree. One connection per process, used under a mutex.
//
// Plan periods (week, month) live in a second table, quota_period(counter, renews, n): one row
// per counter and period, keyed by the period's end; rows whose period ended more than
// kPeriodKeepSeconds ago are deleted (an index on renews makes that a range delete), at most
// once a minute per process, in the transaction of a reserve.
#include <sqlite3.h>

#include <algorithm>
#include <mutex>
#include <stdexcept>

#include "plan_period.hpp"
#include "quota.hpp"

#include "sqlite_handles.hpp"

namespace preflight {
namespace {

using sqlite::Db;
using sqlite::Stmt;
using sqlite::StmtUse;
using SqlError = sqlite::Error;

class SqliteQuotaStore final : public QuotaStore {
public:
    SqliteQuotaStore(std::string path, std::chrono::milliseconds timeout) : path_(std::move(path)) {
        sqlite3* raw = nullptr;
        int rc = sqlite3_open_v2(
            path_.c_str(), &raw,
            SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX | SQLITE_OPEN_NOFOLLOW,  // opened as root
            nullptr);
        db_.reset(raw);  // closed even when the open failed
        if (rc != SQLITE_OK)
            throw std::runtime_error(std::string("cannot open ")
                                         .append(path_)
                                         .append(": ")
                                         .append(raw ? sqlite3_errmsg(raw) : sqlite3_errstr(rc)));
        sqlite3_busy_timeout(db_.get(), static_cast<int>(timeout.count()));
        exec("PRAGMA journal_mode=WAL");
        exec("PRAGMA synchronous=NORMAL");
        exec(
            "CREATE TABLE IF NOT EXISTS quota(counter TEXT NOT NULL, bucket INTEGER NOT NULL, n INTEGER NOT NULL, "
            "PRIMARY KEY(counter, bucket)) WITHOUT ROWID");
        exec(
            "CREATE TABLE IF NOT EXISTS quota_period(counter TEXT NOT NULL, renews INTEGER NOT NULL, n INTEGER NOT "
            "NULL, PRIMARY KEY(counter, renews)) WITHOUT ROWID");
        exec("CREATE INDEX IF NOT EXISTS quota_period_renews ON quota_period(renews)");
        period_select_ = prepare("SELECT n FROM quota_period WHERE counter = ?1 AND renews = ?2");
        period_add_ = prepare(
            "INSERT INTO quota_period(counter, renews, n) VALUES(?1, ?2, ?3) "
            "ON CONFLICT(counter, renews) DO UPDATE SET n = n + excluded.n");
        period_sub_ = prepare("UPDATE quota_period SET n = n - ?3 WHERE counter = ?1 AND renews = ?2");
        period_drop_empty_ = prepare("DELETE FROM quota_period WHERE counter = ?1 AND renews = ?2 AND n <= 0");
        period_purge_ = prepare("DELETE FROM quota_period WHERE renews <= ?1");
        period_keys_ = prepare("SELECT DISTINCT counter FROM quota_period ORDER BY counter");
        begin_ = prepare("BEGIN IMMEDIATE");
        commit_ = prepare("COMMIT");
        rollback_ = prepare("ROLLBACK");
        expire_ = prepare("DELETE FROM quota WHERE counter = ?1 AND bucket <= ?2");
        select_ = prepare("SELECT bucket, n FROM quota WHERE counter = ?1");
        add_ = prepare(
            "INSERT INTO quota(counter, bucket, n) VALUES(?1, ?2, ?3) "
            "ON CONFLICT(counter, bucket) DO UPDATE SET n = n + excluded.n");
        sub_ = prepare("UPDATE quota SET n = n - ?3 WHERE counter = ?1 AND bucket = ?2");
        drop_empty_ = prepare("DELETE FROM quota WHERE counter = ?1 AND bucket = ?2 AND n <= 0");
        keys_ = prepare("SELECT DISTINCT counter FROM quota ORDER BY counter");
    }

    QuotaResult reserve(std::span<const QuotaCounter> counters, bool force, std::int64_t now_ms) override {
        std::lock_guard lock(mutex_);
        QuotaResult r;
        try {
            step_done(begin_.get());
            try {
                r = reserve_in_transaction(counters, force, now_ms);
                step_done(commit_.get());
            } catch (...) {
                StmtUse u(rollback_.get());
                sqlite3_step(u.get());
                throw;
            }
        } catch (const std::exception& e) {
            return QuotaResult::failure(e.what());
        }
        return r;
    }

    bool release(std::span<const QuotaHeld> held, std::string* error) noexcept override {
        try {
            std::lock_guard lock(mutex_);
            step_done(begin_.get());
            try {
                for (const QuotaHeld& h : held) {
                    const bool period = is_period_key(h.key);
                    sqlite3_stmt* sub = period ? period_sub_.get() : sub_.get();
                    sqlite3_stmt* drop = period ? period_drop_empty_.get() : drop_empty_.get();
                    bind_key(sub, h.key, h.bucket);
                    sqlite3_bind_int64(sub, 3, h.amount);
                    step_done(sub);
                    bind_key(drop, h.key, h.bucket);
                    step_done(drop);
                }
                step_done(commit_.get());
            } catch (...) {
                StmtUse u(rollback_.get());
                sqlite3_step(u.get());
                throw;
            }
            return true;
        } catch (const std::exception& e) {
            if (error) *error = e.what();
        } catch (...) {
            if (error) *error = "unknown error";
        }
        return false;
    }

    std::optional<std::vector<std::string>> keys(std::string* error) override {
        std::lock_guard lock(mutex_);
        std::vector<std::string> out;
        for (sqlite3_stmt* s : {keys_.get(), period_keys_.get()}) {
            StmtUse u(s);
            int rc;
            while ((rc = sqlite3_step(u.get())) == SQLITE_ROW)
                out.emplace_back(reinterpret_cast<const char*>(sqlite3_column_text(u.get(), 0)),
                                 static_cast<std::size_t>(sqlite3_column_bytes(u.get(), 0)));
            if (rc != SQLITE_DONE) {
                if (error) *error = sqlite3_errmsg(db_.get());
                return std::nullopt;
            }
        }
        std::sort(out.begin(), out.end());
        return out;
    }

    std::string describe() const override { return std::string("sqlite:").append(path_); }

private:
    QuotaResult reserve_in_transaction(std::span<const QuotaCounter> counters, bool force, std::int64_t now_ms) {
        QuotaResult r;
        r.used.resize(counters.size());
        r.buckets.resize(counters.size());
        std::vector<std::pair<std::int64_t, std::uint64_t>> live;
        purge_ended_periods(now_ms);
        for (std::size_t i = 0; i < counters.size(); ++i) {
            const QuotaCounter& c = counters[i];
            if (is_plan_period(c.window)) {
                period_reserve_read(c, i, now_ms, r);
                continue;
            }
            std::int64_t cur = bucket_of(c.window, now_ms);
            r.buckets[i] = cur;
            bind_key(expire_.get(), c.key, cur - kQuotaBuckets);
            step_done(expire_.get());
            live.clear();
            std::uint64_t sum = 0;
            {
                StmtUse u(select_.get());
                bind_text(u.get(), 1, c.key);
                int rc;
                while ((rc = sqlite3_step(u.get())) == SQLITE_ROW) {
                    auto n = static_cast<std::uint64_t>(std::max<sqlite3_int64>(0, sqlite3_column_int64(u.get(), 1)));
                    live.emplace_back(sqlite3_column_int64(u.get(), 0), n);
                    sum += n;
                }
                if (rc != SQLITE_DONE) throw SqlError(sqlite3_errmsg(db_.get()));
            }
            r.used[i] = sum;
            if (r.over < 0 && c.amount > 0 && sum + c.amount > c.limit) {
                r.over = static_cast<int>(i);
                r.retry_seconds = quota_retry_seconds(live, sum, c.amount, c.limit, c.window, now_ms);
            }
        }
        if (r.over < 0 || force) {
            for (std::size_t i = 0; i < counters.size(); ++i) {
                if (counters[i].amount == 0) continue;
                sqlite3_stmt* add = is_plan_period(counters[i].window) ? period_add_.get() : add_.get();
                bind_key(add, counters[i].key, r.buckets[i]);
                sqlite3_bind_int64(add, 3, counters[i].amount);
                step_done(add);
            }
            r.counted = true;
        }
        return r;
    }

    // A plan period's count: one row, keyed by the period's end.
    void period_reserve_read(const QuotaCounter& c, std::size_t i, std::int64_t now_ms, QuotaResult& r) {
        r.buckets[i] = c.period_end_s;
        std::uint64_t sum = 0;
        {
            StmtUse u(period_select_.get());
            bind_key(u.get(), c.key, c.period_end_s);
            int rc = sqlite3_step(u.get());
            if (rc == SQLITE_ROW)
                sum = static_cast<std::uint64_t>(std::max<sqlite3_int64>(0, sqlite3_column_int64(u.get(), 0)));
            else if (rc != SQLITE_DONE) throw SqlError(sqlite3_errmsg(db_.get()));
        }
        r.used[i] = sum;
        if (r.over < 0 && c.amount > 0 && sum + c.amount > c.limit) {
            r.over = static_cast<int>(i);
            r.retry_seconds = std::max<std::int64_t>(1, c.period_end_s - now_ms / 1000);
        }
    }

    void purge_ended_periods(std::int64_t now_ms) {
        const std::int64_t now_s = now_ms / 1000;
        if (now_s < next_purge_s_) return;
        sqlite3_bind_int64(period_purge_.get(), 1, now_s - kPeriodKeepSeconds);
        step_done(period_purge_.get());
        next_purge_s_ = now_s + 60;
    }

    void exec(const char* sql) {
        char* msg = nullptr;
        if (sqlite3_exec(db_.get(), sql, nullptr, nullptr, &msg) != SQLITE_OK) {
            std::string why = msg ? msg : sqlite3_errmsg(db_.get());
            sqlite3_free(msg);
            throw std::runtime_error(path_ + ": " + why);
        }
    }

    Stmt prepare(const char* sql) {
        sqlite3_stmt* s = nullptr;
        if (sqlite3_prepare_v3(db_.get(), sql, -1, SQLITE_PREPARE_PERSISTENT, &s, nullptr) != SQLITE_OK)
            throw std::runtime_error(path_ + ": " + sqlite3_errmsg(db_.get()));
        return Stmt(s);
    }

    static void bind_text(sqlite3_stmt* s, int i, const std::string& v) {
        sqlite3_bind_text(s, i, v.data(), static_cast<int>(v.size()), SQLITE_STATIC);
    }
    static void bind_key(sqlite3_stmt* s, const std::string& key, std::int64_t bucket) {
        bind_text(s, 1, key);
        sqlite3_bind_int64(s, 2, bucket);
    }

    // Runs a statement that returns no rows, then resets it.
    void step_done(sqlite3_stmt* s) {
        StmtUse u(s);
        if (sqlite3_step(s) != SQLITE_DONE) throw SqlError(path_ + ": " + sqlite3_errmsg(db_.get()));
    }

    std::string path_;
    std::mutex mutex_;
    Db db_;
    Stmt begin_, commit_, rollback_, expire_, select_, add_, sub_, drop_empty_, keys_;
    Stmt period_select_, period_add_, period_sub_, period_drop_empty_, period_purge_, period_keys_;
    std::int64_t next_purge_s_ = 0;
};

}  // namespace

std::unique_ptr<QuotaStore> make_sqlite_quota_store(const std::string& path, std::chrono::milliseconds timeout) {
    return std::make_unique<SqliteQuotaStore>(path, timeout);
}

}  // namespace preflight
