// Writers for classification results: JSON Lines, TSV and an aligned text table. They append
// to a caller-owned buffer so the command line tool can batch its writes.
#pragma once

#include <string>
#include <string_view>

#include "json_string.hpp"
#include "reply_classifier.hpp"

namespace preflight {

enum class Format { json, tsv, text };

// Appends s with tab, newline, CR and backslash escaped as \t \n \r \\ (one TSV field).
void append_tsv_field(std::string& out, std::string_view s);

class ResultWriter {
public:
    explicit ResultWriter(Format f) : format_(f) {}
    // A header line for tsv and text; nothing for json.
    void header(std::string& out) const;
    void result(std::string& out, std::string_view reply, const Classification& c) const;
    // An input that could not be classified; line is the 1-based input line or argument.
    void error(std::string& out, std::string_view reply, std::string_view what, std::size_t line) const;

private:
    Format format_;
};

}  // namespace preflight
