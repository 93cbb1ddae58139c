#pragma once
// The SQLite handles every store on SQLite uses (quota counters, the suppression list): the
// connection and prepared statements as owning pointers, a statement's use that resets it on
// every path, and the error a store turns into its own "store failed" result.
#include <sqlite3.h>

#include <memory>
#include <stdexcept>

namespace preflight::sqlite {

struct DbClose {
    void operator()(sqlite3* db) const noexcept { sqlite3_close_v2(db); }
};
struct StmtFinalize {
    void operator()(sqlite3_stmt* s) const noexcept { sqlite3_finalize(s); }
};
using Db = std::unique_ptr<sqlite3, DbClose>;
using Stmt = std::unique_ptr<sqlite3_stmt, StmtFinalize>;

// Resets a prepared statement when a use of it ends, on every path.
class StmtUse {
public:
    explicit StmtUse(sqlite3_stmt* s) : s_(s) {}
    ~StmtUse() {
        sqlite3_reset(s_);
        sqlite3_clear_bindings(s_);
    }
    StmtUse(const StmtUse&) = delete;
    StmtUse& operator=(const StmtUse&) = delete;
    sqlite3_stmt* get() const { return s_; }

private:
    sqlite3_stmt* s_;
};

struct Error : std::runtime_error {
    using std::runtime_error::runtime_error;
};

}  // namespace preflight::sqlite
