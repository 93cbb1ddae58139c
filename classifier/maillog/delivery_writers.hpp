// Writers of delivery rows: CSV (RFC 4180: CRLF, quoted where needed), JSON Lines, XLSX.
// Columns: Date, Sender, Recipient, Status, Status message; with wide also Queue ID, Category,
// Bounce type, Enhanced code, Relay, Delay.
//
// Addresses and reply texts are written by strangers, and a CSV is often opened in a
// spreadsheet, which runs a cell starting with = + - @ (or tab, CR) as a formula
// ("=cmd|'/Ccalc'!A0@gmail.example" is a valid address). So CSV cells are neutralised as OWASP
// advises for CSV injection, unless the caller asks for raw values (machines reading the CSV);
// XLSX cells are always written as strings, never as formulas, and need nothing of the kind.
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

// CSV cells: neutralised for spreadsheets (the default) or the values as they came.
enum class CsvCells { neutralised, raw };

// Whether a spreadsheet would take a cell starting like s for a formula: s starts with
// = + - @, tab or CR (OWASP, CSV injection).
bool starts_like_formula(std::string_view s);

// Appends s as one CSV field. neutralised: a value that starts like a formula gets a leading
// apostrophe, which spreadsheets show as text and do not run. Then RFC 4180 quoting: the field is
// quoted (inner '"' doubled) when it holds ',', '"', CR or LF, and also ';' or tab, the
// separators of other CSV dialects (Excel in many locales splits at ';'), so that no part of a
// value can become a cell of its own that starts like a formula.
void append_csv_field(std::string& out, std::string_view s, CsvCells cells);

// CSV and JSON Lines: append to a caller-owned buffer, which the caller writes out. JSON is
// always written as the values came (it is for programs); cells applies to CSV.
class TextRowWriter {
public:
    TextRowWriter(RowFormat format, bool wide, CsvCells cells = CsvCells::neutralised)
        : format_(format), wide_(wide), cells_(cells) {}
    void header(std::string& out) const;  // CSV only
    void row(std::string& out, const DeliveryRow& r) const;

private:
    RowFormat format_;
    bool wide_;
    CsvCells cells_;
};

// One worksheet "Deliveries" with a bold header row, fixed column widths, an autofilter over
// all rows, the header frozen, and dates as Excel dates. Text goes in as string cells
// (worksheet_write_string), so "=1+2" stays the text "=1+2": nothing is ever a formula. Written in libxlsxwriter's constant
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
