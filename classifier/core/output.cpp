#include "output.hpp"


#include <charconv>
#include <cstring>
#include <initializer_list>

namespace preflight {
namespace {

// Appends the pieces with one size change: a result line is a dozen short pieces.
void append_all(std::string& out, std::initializer_list<std::string_view> pieces) {
    std::size_t n = 0;
    for (std::string_view p : pieces) n += p.size();
    std::size_t at = out.size();
    out.resize(at + n);
    for (std::string_view p : pieces) {
        std::memcpy(out.data() + at, p.data(), p.size());
        at += p.size();
    }
}

void append_int(std::string& out, int v) {
    char buf[16];
    auto r = std::to_chars(buf, buf + sizeof buf, v);
    out.append(buf, r.ptr);
}

void pad(std::string& out, std::size_t written, std::size_t width) {
    out.append(written < width ? width - written : 1, ' ');
}

}  // namespace

void append_tsv_field(std::string& out, std::string_view s) {
    for (char c : s) {
        switch (c) {
        case '\t': out.append("\\t"); break;
        case '\n': out.append("\\n"); break;
        case '\r': out.append("\\r"); break;
        case '\\': out.append("\\\\"); break;
        default: out.push_back(c);
        }
    }
}

void ResultWriter::header(std::string& out) const {
    if (format_ == Format::tsv) out.append("reply\tstatus\tbounce\tcategory\tcode\tenhanced\tretry\taction\trule\n");
    else if (format_ == Format::text)
        out.append("STATUS    BOUNCE  CATEGORY             CODE  ENHANCED  RETRY  REPLY\n");
}

void ResultWriter::result(std::string& out, std::string_view reply, const Classification& c) const {
    // A reply without an enhanced code gets the one its category names, marked derived.
    const int cls = c.code ? c.code / 100 : c.status == Status::sent ? 2 : c.status == Status::bounce ? 5 : 4;
    const EnhancedCode code = c.enhanced ? c.enhanced : derived_enhanced_code(c.category, cls);
    char enh[12];
    std::size_t enh_len = code.format(enh);
    std::string_view enhanced(enh, enh_len);
    std::string_view rule = c.rule ? std::string_view(c.rule->location) : std::string_view{};
    switch (format_) {
    case Format::json: {
        out.append("{\"reply\": ");
        append_json_string(out, reply);
        char num[16];
        std::string_view code_text = "null";
        if (c.code)
            code_text =
                std::string_view(num, static_cast<std::size_t>(std::to_chars(num, num + sizeof num, c.code).ptr - num));
        std::string_view action = c.action_json;
        std::string action_escaped;  // only for an action the rule set did not escape
        if (action.empty()) append_json_string(action_escaped, c.action), action = action_escaped;
        append_all(
            out,
            {", \"status\": \"", to_string(c.status), "\", \"bounce\": \"", to_string(c.bounce), "\", \"category\": \"",
             to_string(c.category), "\", \"code\": ", code_text, ", \"enhanced\": \"", enhanced,
             c.enhanced ? "\", \"enhanced_source\": \"reported\"" : "\", \"enhanced_source\": \"derived\"",
             c.retry ? ", \"retry\": true, \"action\": " : ", \"retry\": false, \"action\": ", action,
             ", \"rule\": ", c.rule ? std::string_view(c.rule->location_json) : std::string_view("null"), "}\n"});
        break;
    }
    case Format::tsv:
        append_tsv_field(out, reply);
        out.append("\t").append(to_string(c.status)).append("\t").append(to_string(c.bounce));
        out.append("\t").append(to_string(c.category)).append("\t");
        if (c.code) append_int(out, c.code);
        out.append("\t").append(enhanced).append(c.retry ? "\tyes\t" : "\tno\t");
        append_tsv_field(out, c.action);
        out.append("\t").append(rule).append("\n");
        break;
    case Format::text: {
        std::size_t start = out.size();
        out.append(to_string(c.status));
        pad(out, out.size() - start, 10);
        start = out.size();
        out.append(to_string(c.bounce));
        pad(out, out.size() - start, 8);
        start = out.size();
        out.append(to_string(c.category));
        pad(out, out.size() - start, 21);
        start = out.size();
        if (c.code) append_int(out, c.code);
        else out.append("-");
        pad(out, out.size() - start, 6);
        start = out.size();
        out.append(enhanced);
        pad(out, out.size() - start, 10);
        out.append(c.retry ? "yes    " : "no     ");
        append_tsv_field(out, reply);
        out.append("\n          -> ");
        out.append(c.action);
        if (c.rule) out.append(" [").append(rule).append("]");
        out.append("\n");
        break;
    }
    }
}

void ResultWriter::error(std::string& out, std::string_view reply, std::string_view what, std::size_t line) const {
    switch (format_) {
    case Format::json:
        out.append("{\"error\": ");
        append_json_string(out, what);
        out.append(", \"line\": ");
        append_int(out, static_cast<int>(line));
        out.append("}\n");
        break;
    case Format::tsv:
        append_tsv_field(out, reply);
        out.append("\terror\t\t\t\t\t\t");
        append_tsv_field(out, what);
        out.append("\t\n");
        break;
    case Format::text:
        out.append("error     -       -                    -     -         -      ");
        append_tsv_field(out, reply.substr(0, 200));
        out.append("\n          -> line ");
        append_int(out, static_cast<int>(line));
        out.append(": ").append(what).append("\n");
        break;
    }
}

}  // namespace preflight
