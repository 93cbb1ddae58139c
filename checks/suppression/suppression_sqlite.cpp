// The embedded suppression store: SQLite, as the quota store (same reasons: one file shared by the
// milter and preflight-classify on one host, WAL, readable with the sqlite3 shell).
//
// suppression(recipient, scope, ...) keyed (recipient, scope) WITHOUT ROWID, so the RCPT TO lookup
// of both scopes (the sender domain's and "*") is one probe into adjacent rows. Writers take the
// write lock with BEGIN IMMEDIATE, so a read-merge-write of one entry is atomic against every
// process using the file. One connection per process, used under a mutex.
#include <sqlite3.h>

#include <map>
#include <mutex>
#include <stdexcept>

#include "suppression.hpp"
#include "trace_header.hpp"

#include "sqlite_handles.hpp"

namespace preflight {
namespace {

using sqlite::Db;
using sqlite::Stmt;
using sqlite::StmtUse;
using SqlError = sqlite::Error;

constexpr const char* kColumns =
    "scope, recipient, category, reply, remote_mta, source, first_seen, last_seen, count, expires, active";

std::string column_text(sqlite3_stmt* s, int i) {
    const auto* p = reinterpret_cast<const char*>(sqlite3_column_text(s, i));
    return p ? std::string(p, static_cast<std::size_t>(sqlite3_column_bytes(s, i))) : std::string();
}

SuppressionEntry read_entry(sqlite3_stmt* s) {
    SuppressionEntry e;
    e.scope = column_text(s, 0);
    e.recipient = column_text(s, 1);
    e.category = column_text(s, 2);
    e.reply = column_text(s, 3);
    e.remote_mta = column_text(s, 4);
    e.source = parse_suppression_source(column_text(s, 5)).value_or(SuppressionSource::manual);
    e.first_seen = sqlite3_column_int64(s, 6);
    e.last_seen = sqlite3_column_int64(s, 7);
    e.count = static_cast<std::uint32_t>(sqlite3_column_int64(s, 8));
    e.expires = sqlite3_column_int64(s, 9);
    e.active = sqlite3_column_int64(s, 10) != 0;
    return e;
}

class SqliteSuppressionStore final : public SuppressionStore {
public:
    SqliteSuppressionStore(std::string path, std::chrono::milliseconds timeout) : path_(std::move(path)) {
        sqlite3* raw = nullptr;
        int rc = sqlite3_open_v2(
            path_.c_str(), &raw,
            SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX | SQLITE_OPEN_NOFOLLOW, nullptr);
        db_.reset(raw);
        if (rc != SQLITE_OK)
            throw std::runtime_error("cannot open " + path_ + ": " + (raw ? sqlite3_errmsg(raw) : sqlite3_errstr(rc)));
        sqlite3_busy_timeout(db_.get(), static_cast<int>(timeout.count()));
        exec("PRAGMA journal_mode=WAL");
        exec("PRAGMA synchronous=NORMAL");
        exec(
            "CREATE TABLE IF NOT EXISTS suppression(recipient TEXT NOT NULL, scope TEXT NOT NULL, "
            "category TEXT NOT NULL, reply TEXT NOT NULL, remote_mta TEXT NOT NULL, source TEXT NOT NULL, "
            "first_seen INTEGER NOT NULL, last_seen INTEGER NOT NULL, count INTEGER NOT NULL, "
            "expires INTEGER NOT NULL, active INTEGER NOT NULL, PRIMARY KEY(recipient, scope)) WITHOUT ROWID");
        exec(
            "CREATE TABLE IF NOT EXISTS suppression_counts(kind TEXT NOT NULL, name TEXT NOT NULL, "
            "n INTEGER NOT NULL, PRIMARY KEY(kind, name)) WITHOUT ROWID");
        exec(
            "CREATE TABLE IF NOT EXISTS suppression_trace(token TEXT PRIMARY KEY, scope TEXT NOT NULL, "
            "recipient TEXT NOT NULL, expires INTEGER NOT NULL) WITHOUT ROWID");
        exec("CREATE INDEX IF NOT EXISTS suppression_expires ON suppression(expires) WHERE expires > 0");
        exec("CREATE INDEX IF NOT EXISTS suppression_trace_expires ON suppression_trace(expires)");
        begin_ = prepare("BEGIN IMMEDIATE");
        commit_ = prepare("COMMIT");
        rollback_ = prepare("ROLLBACK");
        // Only the primary key in the WHERE: with the expiry in it, SQLite weighed the expiry index
        // and the lookup took 4 times as long (bench_suppression); active and expiry are checked here.
        lookup_ = prepare(std::string("SELECT ") + kColumns +
                          " FROM suppression WHERE recipient = ?1 AND scope IN (?2, '*')");
        get_ = prepare(std::string("SELECT ") + kColumns + " FROM suppression WHERE recipient = ?1 AND scope = ?2");
        put_ = prepare(std::string("INSERT OR REPLACE INTO suppression(") + kColumns +
                       ") VALUES(?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11)");
        count_ = prepare(
            "INSERT INTO suppression_counts(kind, name, n) VALUES(?1, ?2, 1) "
            "ON CONFLICT(kind, name) DO UPDATE SET n = n + 1");
        put_trace_ = prepare(
            "INSERT OR REPLACE INTO suppression_trace(token, scope, recipient, expires) "
            "VALUES(?1, ?2, ?3, ?4)");
        purge_entries_ = prepare(
            "DELETE FROM suppression WHERE (recipient, scope) IN (SELECT recipient, scope FROM suppression "
            "WHERE expires > 0 AND expires <= ?1 LIMIT 1000)");
        purge_traces_ = prepare(
            "DELETE FROM suppression_trace WHERE token IN (SELECT token FROM suppression_trace WHERE expires <= ?1 "
            "LIMIT 1000)");
        find_trace_ = prepare("SELECT scope, recipient FROM suppression_trace WHERE token = ?1 AND expires > ?2");
    }

    SuppressionLookup lookup(std::string_view scope, std::string_view recipient, std::int64_t now) override {
        std::lock_guard lock(mutex_);
        SuppressionLookup out;
        StmtUse u(lookup_.get());
        bind(u.get(), 1, recipient);
        bind(u.get(), 2, scope);
        int rc;
        while ((rc = sqlite3_step(u.get())) == SQLITE_ROW) {
            SuppressionEntry e = read_entry(u.get());
            if (!e.active || e.expired(now)) continue;
            if (!out.entry || out.entry->scope == kGlobalScope) out.entry = std::move(e);  // the domain's first
        }
        if (rc != SQLITE_DONE) {
            out.ok = false;
            out.error = path_ + ": " + sqlite3_errmsg(db_.get());
            out.entry.reset();
        }
        return out;
    }

    std::optional<SuppressionEntry> record(const SuppressionRecord& r, std::string* error) override {
        return in_transaction<SuppressionEntry>(error, [&] {
            purge_now_and_then(r.now);
            std::optional<SuppressionEntry> existing = get(r.entry.scope, r.entry.recipient);
            SuppressionEntry merged = merge_suppression(existing, r);
            write(merged);
            bool newly = merged.active && !(existing && existing->active && !existing->expired(r.now));
            if (newly) bump("adds", to_string(r.entry.source));
            return merged;
        });
    }

    bool put(const SuppressionEntry& e, std::string* error) override {
        return in_transaction<bool>(error,
                                    [&] {
                                        write(e);
                                        bump("adds", to_string(e.source));
                                        return true;
                                    })
            .has_value();
    }

    bool put_many(std::span<const SuppressionEntry> entries, std::string* error) override {
        return in_transaction<bool>(error,
                                    [&] {
                                        for (const SuppressionEntry& e : entries) {
                                            write(e);
                                            bump("adds", to_string(e.source));
                                        }
                                        return true;
                                    })
            .has_value();
    }

    std::optional<std::size_t> remove(std::string_view scope, std::string_view recipient, std::string* error) override {
        return in_transaction<std::size_t>(error, [&] {
            Stmt del = prepare(scope.empty() ? "DELETE FROM suppression WHERE recipient = ?1"
                                             : "DELETE FROM suppression WHERE recipient = ?1 AND scope = ?2");
            bind(del.get(), 1, recipient);
            if (!scope.empty()) bind(del.get(), 2, scope);
            if (sqlite3_step(del.get()) != SQLITE_DONE) throw SqlError(sqlite3_errmsg(db_.get()));
            return static_cast<std::size_t>(sqlite3_changes(db_.get()));
        });
    }

    std::optional<std::vector<SuppressionEntry>> list(const SuppressionFilter& f, std::int64_t now,
                                                      std::string* error) override {
        std::lock_guard lock(mutex_);
        try {
            Stmt all = prepare(std::string("SELECT ") + kColumns + " FROM suppression ORDER BY recipient, scope");
            std::vector<SuppressionEntry> out;
            int rc;
            while ((rc = sqlite3_step(all.get())) == SQLITE_ROW) {
                SuppressionEntry e = read_entry(all.get());
                if (matches(f, e, now)) out.push_back(std::move(e));
            }
            if (rc != SQLITE_DONE) throw SqlError(sqlite3_errmsg(db_.get()));
            return out;
        } catch (const std::exception& e) {
            if (error) *error = path_ + ": " + e.what();
            return std::nullopt;
        }
    }

    bool count_sender_fault(std::string_view sender_domain, std::string_view category, std::string* error) override {
        return in_transaction<bool>(error,
                                    [&] {
                                        bump("sender-fault", std::string(sender_domain) + "|" + std::string(category));
                                        return true;
                                    })
            .has_value();
    }

    std::optional<SuppressionStats> stats(std::int64_t now, std::string* error) override {
        std::lock_guard lock(mutex_);
        try {
            SuppressionStats st;
            Stmt by_reason = prepare(
                "SELECT category, count(*) FROM suppression WHERE active = 1 AND (expires = 0 OR expires > ?1) "
                "GROUP BY category ORDER BY category");
            sqlite3_bind_int64(by_reason.get(), 1, now);
            read_pairs(by_reason.get(), st.entries_by_reason);
            Stmt counts = prepare("SELECT kind, name, n FROM suppression_counts ORDER BY kind, name");
            int rc;
            while ((rc = sqlite3_step(counts.get())) == SQLITE_ROW) {
                std::string kind = column_text(counts.get(), 0);
                auto n = static_cast<std::uint64_t>(sqlite3_column_int64(counts.get(), 2));
                (kind == "adds" ? st.adds_by_source : st.sender_faults).emplace_back(column_text(counts.get(), 1), n);
            }
            if (rc != SQLITE_DONE) throw SqlError(sqlite3_errmsg(db_.get()));
            return st;
        } catch (const std::exception& e) {
            if (error) *error = path_ + ": " + e.what();
            return std::nullopt;
        }
    }

    bool put_trace(std::string_view token, std::string_view scope, std::string_view recipient, std::int64_t expires,
                   std::string* error) override {
        std::lock_guard lock(mutex_);
        try {
            purge_now_and_then(expires - kTraceLifetime);  // the milter's tokens live kTraceLifetime
        } catch (const std::exception&) {}                 // a failed clean-up leaves rows for the next one
        StmtUse u(put_trace_.get());
        bind(u.get(), 1, token);
        bind(u.get(), 2, scope);
        bind(u.get(), 3, recipient);
        sqlite3_bind_int64(u.get(), 4, expires);
        if (sqlite3_step(u.get()) == SQLITE_DONE) return true;
        if (error) *error = path_ + ": " + sqlite3_errmsg(db_.get());
        return false;
    }

    std::optional<std::pair<std::string, std::string>> find_trace(std::string_view token, std::int64_t now,
                                                                  std::string* error) override {
        std::lock_guard lock(mutex_);
        StmtUse u(find_trace_.get());
        bind(u.get(), 1, token);
        sqlite3_bind_int64(u.get(), 2, now);
        int rc = sqlite3_step(u.get());
        if (rc == SQLITE_ROW) return std::make_pair(column_text(u.get(), 0), column_text(u.get(), 1));
        if (rc != SQLITE_DONE && error) *error = path_ + ": " + sqlite3_errmsg(db_.get());
        return std::nullopt;
    }

    std::string describe() const override { return "sqlite:" + path_; }

private:
    // Runs body between BEGIN IMMEDIATE and COMMIT (ROLLBACK when it throws), under the mutex.
    template <class T, class Body>
    std::optional<T> in_transaction(std::string* error, Body body) {
        std::lock_guard lock(mutex_);
        try {
            step_done(begin_.get());
            try {
                T out = body();
                step_done(commit_.get());
                return out;
            } catch (...) {
                StmtUse u(rollback_.get());
                sqlite3_step(u.get());
                throw;
            }
        } catch (const std::exception& e) {
            if (error) *error = path_ + ": " + e.what();
            return std::nullopt;
        }
    }

    // Expired entries and trace tokens are deleted 1000 at a time every 1000 writes (indexed by
    // expiry), so neither table grows without bound; lookups ignore them meanwhile.
    void purge_now_and_then(std::int64_t now) {
        if (++writes_ % 1000 != 0) return;
        for (sqlite3_stmt* s : {purge_entries_.get(), purge_traces_.get()}) {
            sqlite3_bind_int64(s, 1, now);
            step_done(s);
        }
    }

    std::optional<SuppressionEntry> get(std::string_view scope, std::string_view recipient) {
        StmtUse u(get_.get());
        bind(u.get(), 1, recipient);
        bind(u.get(), 2, scope);
        int rc = sqlite3_step(u.get());
        if (rc == SQLITE_ROW) return read_entry(u.get());
        if (rc != SQLITE_DONE) throw SqlError(sqlite3_errmsg(db_.get()));
        return std::nullopt;
    }

    void write(const SuppressionEntry& e) {
        sqlite3_stmt* s = put_.get();
        bind(s, 1, e.scope);
        bind(s, 2, e.recipient);
        bind(s, 3, e.category);
        bind(s, 4, e.reply);
        bind(s, 5, e.remote_mta);
        bind(s, 6, to_string(e.source));
        sqlite3_bind_int64(s, 7, e.first_seen);
        sqlite3_bind_int64(s, 8, e.last_seen);
        sqlite3_bind_int64(s, 9, e.count);
        sqlite3_bind_int64(s, 10, e.expires);
        sqlite3_bind_int64(s, 11, e.active ? 1 : 0);
        step_done(s);
    }

    void bump(std::string_view kind, std::string_view name) {
        bind(count_.get(), 1, kind);
        bind(count_.get(), 2, name);
        step_done(count_.get());
    }

    void read_pairs(sqlite3_stmt* s, std::vector<std::pair<std::string, std::uint64_t>>& out) {
        int rc;
        while ((rc = sqlite3_step(s)) == SQLITE_ROW)
            out.emplace_back(column_text(s, 0), static_cast<std::uint64_t>(sqlite3_column_int64(s, 1)));
        if (rc != SQLITE_DONE) throw SqlError(sqlite3_errmsg(db_.get()));
    }

    static void bind(sqlite3_stmt* s, int i, std::string_view v) {
        sqlite3_bind_text(s, i, v.data(), static_cast<int>(v.size()), SQLITE_TRANSIENT);
    }

    void exec(const char* sql) {
        char* msg = nullptr;
        if (sqlite3_exec(db_.get(), sql, nullptr, nullptr, &msg) != SQLITE_OK) {
            std::string why = msg ? msg : sqlite3_errmsg(db_.get());
            sqlite3_free(msg);
            throw std::runtime_error(path_ + ": " + why);
        }
    }

    Stmt prepare(const std::string& sql) {
        sqlite3_stmt* s = nullptr;
        if (sqlite3_prepare_v3(db_.get(), sql.c_str(), -1, SQLITE_PREPARE_PERSISTENT, &s, nullptr) != SQLITE_OK)
            throw std::runtime_error(path_ + ": " + sqlite3_errmsg(db_.get()));
        return Stmt(s);
    }

    // Runs a statement that returns no rows, then resets it.
    void step_done(sqlite3_stmt* s) {
        StmtUse u(s);
        if (sqlite3_step(s) != SQLITE_DONE) throw SqlError(sqlite3_errmsg(db_.get()));
    }

    std::string path_;
    std::mutex mutex_;
    Db db_;
    Stmt begin_, commit_, rollback_, lookup_, get_, put_, count_, put_trace_, find_trace_, purge_entries_,
        purge_traces_;
    std::uint64_t writes_ = 0;
};

}  // namespace

std::unique_ptr<SuppressionStore> make_sqlite_suppression_store(const std::string& path,
                                                                std::chrono::milliseconds timeout) {
    return std::make_unique<SqliteSuppressionStore>(path, timeout);
}

}  // namespace preflight
