#include "delivery_writers.hpp"

#include <xlsxwriter.h>

#include <charconv>
#include <cmath>
#include <stdexcept>
#include <vector>

#include "output.hpp"
#include "utf8.hpp"

namespace preflight {
namespace {

constexpr std::string_view kHeaders[] = {"Date",           "Sender",   "Recipient", "Status",
                                         "Status message", "Queue ID", "Category",  "Bounce type",
                                         "Enhanced code",  "Relay",    "Delay"};
constexpr std::size_t kNarrowColumns = 5, kWideColumns = 11;
constexpr std::size_t kCellMax = 32767;  // Excel: characters per cell (bytes here: never more)
constexpr double kWidths[] = {20, 30, 30, 10, 80, 14, 20, 11, 14, 30, 8};

// The delay as a finite number, if it is one.
bool delay_number(std::string_view s, double& v) {
    if (s.empty()) return false;
    auto r = std::from_chars(s.data(), s.data() + s.size(), v);
    return r.ec == std::errc{} && r.ptr == s.data() + s.size() && std::isfinite(v);
}

}  // namespace

bool starts_like_formula(std::string_view s) {
    return !s.empty() && std::string_view("=+-@\t\r").find(s.front()) != std::string_view::npos;
}

void append_csv_field(std::string& out, std::string_view s, CsvCells cells) {
    const bool apostrophe = cells == CsvCells::neutralised && starts_like_formula(s);
    if (s.find_first_of(",\"\r\n;\t") == std::string_view::npos) {
        if (apostrophe) out.push_back('\'');
        out.append(s);
        return;
    }
    out.push_back('"');
    if (apostrophe) out.push_back('\'');
    for (char c : s) {
        if (c == '"') out.push_back('"');
        out.push_back(c);
    }
    out.push_back('"');
}

std::string_view status_label(Status s) {
    switch (s) {
    case Status::sent: return "Sent";
    case Status::deferred: return "Deferred";
    case Status::bounce: return "Bounce";
    case Status::rejected: return "Rejected";
    case Status::expired: return "Expired";
    }
    return "";
}

std::string clean_utf8(std::string_view s, std::size_t max_bytes) {
    std::string out;
    out.reserve(std::min(s.size(), max_bytes));
    for (std::size_t i = 0; i < s.size();) {
        unsigned char c = static_cast<unsigned char>(s[i]);
        std::string_view piece;
        if (c < 0x80) {
            bool bad = (c < 0x20 && c != '\t' && c != '\n') || c == 0x7F;
            piece = bad ? std::string_view("\xEF\xBF\xBD") : s.substr(i, 1);
            ++i;
        } else if (std::size_t n = utf8_sequence(s, i)) {
            piece = s.substr(i, n);
            i += n;
        } else {
            piece = "\xEF\xBF\xBD";
            ++i;
        }
        if (out.size() + piece.size() > max_bytes) break;
        out.append(piece);
    }
    return out;
}

void TextRowWriter::header(std::string& out) const {
    if (format_ != RowFormat::csv) return;
    std::size_t n = wide_ ? kWideColumns : kNarrowColumns;
    for (std::size_t i = 0; i < n; ++i) {
        if (i) out.push_back(',');
        out.append(kHeaders[i]);
    }
    out.append("\r\n");
}

void TextRowWriter::row(std::string& out, const DeliveryRow& r) const {
    char date[20];
    std::string_view date_sv(date, r.time.format(date));
    std::string_view category = to_string(r.category), bounce = to_string(r.bounce);
    if (format_ == RowFormat::csv) {
        out.append(date_sv).push_back(',');
        append_csv_field(out, r.sender, cells_);
        out.push_back(',');
        append_csv_field(out, r.recipient, cells_);
        out.push_back(',');
        out.append(status_label(r.status)).push_back(',');  // ours: never starts like a formula
        append_csv_field(out, r.message, cells_);
        if (wide_) {
            for (std::string_view f : {std::string_view(r.queue_id), category, bounce, std::string_view(r.enhanced),
                                       std::string_view(r.relay), std::string_view(r.delay)}) {
                out.push_back(',');
                append_csv_field(out, f, cells_);
            }
        }
        out.append("\r\n");
        return;
    }
    out.append("{\"date\": \"").append(date_sv).append("\", \"sender\": ");
    append_json_string(out, r.sender);
    out.append(", \"recipient\": ");
    append_json_string(out, r.recipient);
    out.append(", \"status\": \"").append(status_label(r.status)).append("\", \"message\": ");
    append_json_string(out, r.message);
    if (wide_) {
        out.append(", \"queue_id\": ");
        append_json_string(out, r.queue_id);
        out.append(", \"category\": \"").append(category).append("\", \"bounce_type\": \"").append(bounce);
        out.append("\", \"enhanced_code\": ");
        if (r.enhanced.empty()) out.append("null");
        else append_json_string(out, r.enhanced);
        out.append(", \"relay\": ");
        if (r.relay.empty()) out.append("null");
        else append_json_string(out, r.relay);
        out.append(", \"delay\": ");
        double d;
        if (delay_number(r.delay, d)) {
            char buf[32];
            auto res = std::to_chars(buf, buf + sizeof buf, d);
            out.append(buf, res.ptr);
        } else {
            out.append("null");
        }
    }
    out.append("}\n");
}

// ---- XLSX ------------------------------------------------------------------------------------

struct XlsxRowWriter::Impl {
    struct Close {
        void operator()(lxw_workbook* wb) const { workbook_close(wb); }
    };
    std::unique_ptr<lxw_workbook, Close> wb;
    lxw_worksheet* ws = nullptr;
    lxw_format* bold = nullptr;
    lxw_format* date = nullptr;
    std::size_t columns = kNarrowColumns;
    lxw_row_t next = 1;  // row 0 is the header
    std::string path;
    std::string cell;

    bool fail(std::string& error, lxw_error e, const char* what) {
        error = path + ": " + what + ": " + lxw_strerror(e);
        return false;
    }
    bool put(lxw_col_t col, std::string_view s, std::string& error) {
        if (s.empty()) return true;
        cell = clean_utf8(s, kCellMax);
        lxw_error e = worksheet_write_string(ws, next, col, cell.c_str(), nullptr);
        return e == LXW_NO_ERROR || fail(error, e, "cannot write a cell");
    }
};

XlsxRowWriter::XlsxRowWriter(const std::string& path, bool wide) : impl_(std::make_unique<Impl>()) {
    Impl& x = *impl_;
    x.path = path;
    x.columns = wide ? kWideColumns : kNarrowColumns;
    lxw_workbook_options opts{};
    opts.constant_memory = LXW_TRUE;
    opts.use_zip64 = LXW_TRUE;
    x.wb.reset(workbook_new_opt(path.c_str(), &opts));
    if (!x.wb) throw std::runtime_error(path + ": cannot create the workbook");
    x.ws = workbook_add_worksheet(x.wb.get(), "Deliveries");
    x.bold = workbook_add_format(x.wb.get());
    x.date = workbook_add_format(x.wb.get());
    if (!x.ws || !x.bold || !x.date) throw std::runtime_error(path + ": cannot set up the worksheet");
    format_set_bold(x.bold);
    format_set_num_format(x.date, "yyyy-mm-dd hh:mm:ss");
    for (std::size_t c = 0; c < x.columns; ++c) {
        auto col = static_cast<lxw_col_t>(c);
        worksheet_set_column(x.ws, col, col, kWidths[c], c == 0 ? x.date : nullptr);
        worksheet_write_string(x.ws, 0, col, std::string(kHeaders[c]).c_str(), x.bold);
    }
    worksheet_freeze_panes(x.ws, 1, 0);
}

XlsxRowWriter::~XlsxRowWriter() = default;  // an unclosed workbook is closed by Impl::wb

bool XlsxRowWriter::row(const DeliveryRow& r, std::string& error) {
    Impl& x = *impl_;
    if (!x.wb) return false;
    if (x.next >= LXW_ROW_MAX) {
        error = x.path + ": an XLSX sheet holds at most 1048575 rows; use --format csv";
        return false;
    }
    lxw_error e = worksheet_write_number(x.ws, x.next, 0, r.time.excel_serial(), x.date);
    if (e != LXW_NO_ERROR) return x.fail(error, e, "cannot write a date");
    if (!x.put(1, r.sender, error) || !x.put(2, r.recipient, error) || !x.put(3, status_label(r.status), error) ||
        !x.put(4, r.message, error))
        return false;
    if (x.columns == kWideColumns) {
        if (!x.put(5, r.queue_id, error) || !x.put(6, to_string(r.category), error) ||
            !x.put(7, to_string(r.bounce), error) || !x.put(8, r.enhanced, error) || !x.put(9, r.relay, error))
            return false;
        double d;
        if (delay_number(r.delay, d)) {
            e = worksheet_write_number(x.ws, x.next, 10, d, nullptr);
            if (e != LXW_NO_ERROR) return x.fail(error, e, "cannot write a number");
        } else if (!x.put(10, r.delay, error)) {
            return false;
        }
    }
    ++x.next;
    return true;
}

bool XlsxRowWriter::close(std::string& error) {
    Impl& x = *impl_;
    if (!x.wb) return true;
    worksheet_autofilter(x.ws, 0, 0, x.next - 1, static_cast<lxw_col_t>(x.columns - 1));
    lxw_error e = workbook_close(x.wb.release());
    if (e != LXW_NO_ERROR) return x.fail(error, e, "cannot write the workbook");
    return true;
}

}  // namespace preflight
