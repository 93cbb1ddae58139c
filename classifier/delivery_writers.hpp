// Writers of delivery rows: CSV (RFC 4180: CRLF, quoted where needed), JSON Lines, XLSX.
// Columns: Date, Sender, Recipient, Status, Status message; with wide also Queue ID, Category,
// Bounce type, Enhanced code, Relay, Delay.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>

#include "delivery_tracker.hpp"

namespace preflight {

enum class RowFormat { csv, json, xlsx };

// "Sent", "Deferred", "Bounce", "Rejected", "Expired".
std::string_view status_label(Status s);

// CSV and JSON Lines: append to a caller-owned buffer, which the caller writes out.
class TextRowWriter {
public:
    TextRowWriter(RowFormat format, bool wide) : format_(format), wide_(wide) {}
    void header(std::string& out) const;  // CSV only
    void row(std::string& out, const DeliveryRow& r) const;

private:
    RowFormat format_;
    bool wide_;
};

// One worksheet "Deliveries" with a bold header row, fixed column widths, an autofilter over
// all rows, the header frozen, and dates as Excel dates. Written in libxlsxwriter's constant
// memory mode (row by row, temporary file in TMPDIR). Strings are made valid UTF-8 and cut at
// Excel's 32767 characters per cell.
class XlsxRowWriter {
public:
    // Throws std::runtime_error when the workbook cannot be created.
    XlsxRowWriter(const std::string& path, bool wide);
    ~XlsxRowWriter();
    XlsxRowWriter(const XlsxRowWriter&) = delete;
    XlsxRowWriter& operator=(const XlsxRowWriter&) = delete;

    // false (and error set) when the row cannot be written, e.g. past Excel's 1,048,576 rows.
    bool row(const DeliveryRow& r, std::string& error);
    // Writes the file; false (and error set) when that fails. Called by the destructor if needed.
    bool close(std::string& error);

private:
    struct Impl;
    std::unique_ptr<Impl> impl_;
};

// s as valid UTF-8 without C0 controls other than tab and newline (replaced by U+FFFD), at
// most max_bytes long, cut at a character boundary.
std::string clean_utf8(std::string_view s, std::size_t max_bytes = SIZE_MAX);

}  // namespace preflight
