// Splits one SMTP reply, as a relay sees it, into basic code, enhanced status code and text.
//
// Accepted shapes: "550 5.1.1 text", multi-line "550-5.1.1 a\n550 5.1.1 b" (or the same lines
// joined by spaces), "Diagnostic-Code: smtp; 550 ...", "smtp; 550 ...", "#550 5.1.1 ..."
// (Exchange), "5.1.1 text", Postfix's "host x[ip] said: 550 5.1.1 text (in reply to ...)",
// and code-less status messages ("Host not found (MX)"). The text handed to the rules has the
// leading codes and every repeated continuation prefix removed and blanks collapsed.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

namespace preflight {

// RFC 3463 class.subject.detail; cls == 0 means absent.
struct EnhancedCode {
    std::uint16_t cls = 0, subject = 0, detail = 0;
    explicit operator bool() const { return cls != 0; }
    bool operator==(const EnhancedCode&) const = default;
    // "5.1.1"; buf needs 12 bytes. Returns the length written.
    std::size_t format(char* buf) const;
};

struct ParsedReply {
    int code = 0;           // basic reply code, 0 when absent
    EnhancedCode enhanced;  // absent when cls == 0
    std::string_view text;  // normalised text; points into the caller's scratch buffer

    // The reply class: first digit of the code, else of the enhanced code, else 0.
    int reply_class() const { return code ? code / 100 : enhanced.cls; }
};

// Parses raw into out. scratch is reused across calls so that the hot path does not allocate.
void parse_reply(std::string_view raw, std::string& scratch, ParsedReply& out);

// Parses "C.S.D" exactly (each part 1-3 digits); false otherwise.
bool parse_enhanced_code(std::string_view s, EnhancedCode& out);

}  // namespace preflight
