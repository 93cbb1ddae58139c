#include "bounce_message.hpp"

#include "ascii.hpp"

#include <gmime/gmime.h>

#include <algorithm>
#include <array>
#include <memory>
#include <cstring>
#include <mutex>

#include "utf8.hpp"

// Under AddressSanitizer (GCC defines __SANITIZE_ADDRESS__, Clang answers __has_feature).
#if defined(__SANITIZE_ADDRESS__)
#define PREFLIGHT_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define PREFLIGHT_ASAN 1
#endif
#endif
#ifdef PREFLIGHT_ASAN
#include <sanitizer/lsan_interface.h>
#endif

namespace preflight {
namespace {

constexpr std::size_t kMaxText = 64 * 1024;  // human-readable text kept per message

// RAII for GObjects (GMime's streams, parsers, messages) and for g_malloc'ed strings.
struct GObjectUnref {
    void operator()(void* p) const {
        if (p) g_object_unref(p);
    }
};
template <typename T>
using GPtr = std::unique_ptr<T, GObjectUnref>;
struct GFree {
    void operator()(void* p) const { g_free(p); }
};
using GString_ = std::unique_ptr<char, GFree>;
struct OptionsFree {
    void operator()(GMimeParserOptions* p) const { g_mime_parser_options_free(p); }
};

// The message/ subtypes GMime's parser reads as a whole message (its is_rfc822()).
constexpr std::array<const char*, 4> kReturnedMessageSubtypes = {"rfc822", "rfc2822", "global", "news"};

// GMime's classes are made lazily, on the first object of each type. Making them all here, once,
// means no worker thread ever creates a class while another reads it: GLib orders that with its
// own futex locks, which ThreadSanitizer cannot see (it reported each such read as a race).
void init_gmime() {
    static std::once_flag once;
    std::call_once(once, [] {
#ifdef PREFLIGHT_ASAN
        // GMime's type registry drops the entry a registration replaces (16 bytes for each of
        // the four below, once per process). Everything allocated here is GMime's for the
        // process's life, so LeakSanitizer is told to ignore it.
        __lsan::ScopedDisabler gmime_lives_as_long_as_the_process;
#endif
        g_mime_init();
        // A returned message (message/rfc822 and the subtypes GMime reads as one) is kept a leaf
        // part, its bytes not parsed: GMime would otherwise build its every header field and part
        // (a fifth of dsn's instructions), where a bounce needs only its header block (read by
        // header_block) and, when it is itself a report, its bytes parsed as one.
        for (const char* subtype : kReturnedMessageSubtypes)
            g_mime_object_register_type("message", subtype, g_mime_part_get_type());
        for (GType t : {g_mime_object_get_type(),           g_mime_part_get_type(),
                        g_mime_text_part_get_type(),        g_mime_multipart_get_type(),
                        g_mime_multipart_signed_get_type(), g_mime_multipart_encrypted_get_type(),
                        g_mime_message_get_type(),          g_mime_message_part_get_type(),
                        g_mime_message_partial_get_type(),  g_mime_application_pkcs7_mime_get_type(),
                        g_mime_content_type_get_type(),     g_mime_content_disposition_get_type(),
                        g_mime_header_list_get_type(),      g_mime_param_list_get_type(),
                        g_mime_references_get_type(),       g_mime_data_wrapper_get_type(),
                        g_mime_parser_get_type(),           g_mime_stream_get_type(),
                        g_mime_stream_mem_get_type(),       g_mime_stream_filter_get_type(),
                        g_mime_stream_null_get_type(),      g_mime_filter_get_type(),
                        g_mime_filter_basic_get_type(),     g_mime_filter_charset_get_type(),
                        g_mime_filter_best_get_type(),      g_mime_filter_strip_get_type(),
                        g_mime_filter_dos2unix_get_type(),  g_mime_filter_unix2dos_get_type(),
                        g_mime_filter_windows_get_type(),   g_mime_filter_from_get_type(),
                        g_mime_filter_html_get_type(),      g_mime_filter_enriched_get_type(),
                        g_mime_filter_yenc_get_type(),      g_mime_filter_gzip_get_type(),
                        internet_address_get_type(),        internet_address_mailbox_get_type(),
                        internet_address_group_get_type(),  internet_address_list_get_type()}) {
            if (G_TYPE_IS_CLASSED(t)) g_type_class_ref(t);  // kept for the process's life
        }
    });
}

std::string header(GMimeObject* o, const char* name) {
    const char* v = g_mime_object_get_header(o, name);
    return v ? std::string(ascii::trim(v)) : std::string();
}

// The decoded (transfer encoding removed) content of a leaf part, as bytes.
std::string part_bytes(GMimePart* part) {
    GMimeDataWrapper* w = g_mime_part_get_content(part);  // owned by the part
    if (!w) return {};
    GPtr<GMimeStream> mem(g_mime_stream_mem_new());
    g_mime_data_wrapper_write_to_stream(w, mem.get());
    GByteArray* arr = g_mime_stream_mem_get_byte_array(GMIME_STREAM_MEM(mem.get()));
    return std::string(reinterpret_cast<const char*>(arr->data), arr->len);
}

// A text part converted to UTF-8 from its declared charset.
std::string part_text(GMimePart* part) {
    if (GMIME_IS_TEXT_PART(part)) {
        GString_ t(g_mime_text_part_get_text(GMIME_TEXT_PART(part)));
        if (t) return std::string(t.get());
    }
    return part_bytes(part);
}

// A returned message: a leaf part (init_gmime) of type message/rfc822 or its kin whose bytes
// are the message itself. One sent with base64, quoted-printable or uuencode is not: GMime
// reads those as application/octet-stream, and so does this (they are skipped).
bool returned_message(GMimePart* part, GMimeContentType* ct) {
    if (!ct || g_ascii_strcasecmp(g_mime_content_type_get_media_type(ct), "message") != 0) return false;
    const char* subtype = g_mime_content_type_get_media_subtype(ct);
    if (!subtype || std::none_of(kReturnedMessageSubtypes.begin(), kReturnedMessageSubtypes.end(),
                                 [subtype](const char* s) { return g_ascii_strcasecmp(s, subtype) == 0; }))
        return false;
    switch (g_mime_part_get_content_encoding(part)) {
    case GMIME_CONTENT_ENCODING_BASE64:
    case GMIME_CONTENT_ENCODING_QUOTEDPRINTABLE:
    case GMIME_CONTENT_ENCODING_UUENCODE: return false;
    default: return true;
    }
}

// The header block of a leaf part's bytes: through the first empty line ("\n" or "\r\n" at a
// line's start, where GMime ends a header block), or all of them; read only that far.
std::string header_block_bytes(GMimePart* part) {
    GMimeDataWrapper* w = g_mime_part_get_content(part);  // owned by the part
    GMimeStream* raw = w ? g_mime_data_wrapper_get_stream(w) : nullptr;
    if (!raw) return {};
    // The end of the block in out, searching from `from`; npos while the next read may decide.
    auto block_end = [](const std::string& out, std::size_t from) {
        if (from == 0 && (out.starts_with("\n") || out.starts_with("\r\n"))) return out.find('\n') + 1;
        for (std::size_t nl = out.find('\n', from); nl != std::string::npos; nl = out.find('\n', nl + 1)) {
            if (out.compare(nl + 1, 1, "\n") == 0) return nl + 2;
            if (out.compare(nl + 1, 2, "\r\n") == 0) return nl + 3;
            if (nl + 3 > out.size()) break;
        }
        return std::string::npos;
    };
    g_mime_stream_reset(raw);
    std::string out;
    char buf[4096];
    std::size_t from = 0, end = std::string::npos;
    for (gssize n; end == std::string::npos && (n = g_mime_stream_read(raw, buf, sizeof buf)) > 0;) {
        out.append(buf, static_cast<std::size_t>(n));
        end = block_end(out, from);
        from = out.size() < 3 ? 0 : out.size() - 3;  // a line end may straddle two reads
    }
    g_mime_stream_reset(raw);
    if (end != std::string::npos) out.resize(end);
    return out;
}

// A returned message's header fields, parsed by GMime from its header block alone (every field,
// in order, as a part of its own: no body, no parts).
GPtr<GMimeObject> returned_header(GMimePart* part) {
    const std::string block = header_block_bytes(part);
    GPtr<GMimeStream> stream(g_mime_stream_mem_new_with_buffer(block.data(), block.size()));
    GPtr<GMimeParser> parser(g_mime_parser_new_with_stream(stream.get()));
    g_mime_parser_set_format(parser.get(), GMIME_FORMAT_MESSAGE);
    std::unique_ptr<GMimeParserOptions, OptionsFree> quiet(g_mime_parser_options_new());
    return GPtr<GMimeObject>(g_mime_parser_construct_part(parser.get(), quiet.get()));
}

// The last Message-ID field's identifier, as GMimeMessage reads it.
std::string last_message_id(GMimeObject* o) {
    GMimeHeaderList* list = g_mime_object_get_header_list(o);
    const char* value = nullptr;
    for (int i = 0, n = g_mime_header_list_get_count(list); i < n; ++i) {
        GMimeHeader* h = g_mime_header_list_get_header_at(list, i);
        if (g_ascii_strcasecmp(g_mime_header_get_name(h), "Message-ID") == 0) value = g_mime_header_get_value(h);
    }
    if (!value) return {};
    GString_ id(g_mime_utils_decode_message_id(value));
    return id ? std::string(id.get()) : std::string();
}

// Crude HTML to text: tags dropped, block ends as newlines, a few entities. Office 365 and
// some providers send their reasons only as HTML.
std::string html_to_text(std::string_view h) {
    std::string out;
    out.reserve(h.size() / 2);
    for (std::size_t i = 0; i < h.size();) {
        char c = h[i];
        if (c == '<') {
            std::size_t end = h.find('>', i);
            if (end == std::string_view::npos) break;
            std::string tag = ascii::to_lower(h.substr(i + 1, std::min<std::size_t>(end - i - 1, 8)));
            if (tag.starts_with("br") || tag.starts_with("/p") || tag.starts_with("p") || tag.starts_with("/div") ||
                tag.starts_with("/tr") || tag.starts_with("li") || tag.starts_with("/h"))
                out.push_back('\n');
            else if (tag.starts_with("/td")) out.push_back(' ');
            if (tag.starts_with("style") || tag.starts_with("script") || tag.starts_with("head")) {
                std::string close = "</" + tag.substr(0, tag.starts_with("head")    ? 4
                                                         : tag.starts_with("style") ? 5
                                                                                    : 6);
                std::size_t e2 = ascii::to_lower(h.substr(end)).find(close);
                i = e2 == std::string::npos ? h.size() : end + e2;
                continue;
            }
            i = end + 1;
            continue;
        }
        if (c == '&') {
            static constexpr std::array<std::pair<std::string_view, char>, 6> kEntities = {
                {{"&lt;", '<'}, {"&gt;", '>'}, {"&amp;", '&'}, {"&quot;", '"'}, {"&nbsp;", ' '}, {"&#39;", '\''}}};
            bool done = false;
            for (auto [name, ch] : kEntities) {
                if (h.substr(i, name.size()) == name) {
                    out.push_back(ch);
                    i += name.size();
                    done = true;
                    break;
                }
            }
            if (done) continue;
        }
        out.push_back(c == '\r' ? '\n' : c);
        ++i;
    }
    return out;
}

// "Message-ID: <x>" among header lines (text/rfc822-headers or a pasted header block).
std::string find_message_id(std::string_view headers) {
    std::size_t pos = 0;
    while (pos < headers.size()) {
        std::size_t nl = headers.find('\n', pos);
        std::string_view line = headers.substr(pos, nl == std::string_view::npos ? std::string_view::npos : nl - pos);
        if (line.size() > 11 && ascii::to_lower(line.substr(0, 11)) == "message-id:") {
            std::string_view v = ascii::trim(line.substr(11));
            if (v.empty() && nl != std::string_view::npos) {  // folded onto the next line
                std::size_t nl2 = headers.find('\n', nl + 1);
                v = ascii::trim(
                    headers.substr(nl + 1, nl2 == std::string_view::npos ? std::string_view::npos : nl2 - nl - 1));
            }
            if (v.size() >= 2 && v.front() == '<') {
                std::size_t close = v.find('>');
                if (close != std::string_view::npos) v = v.substr(1, close - 1);
            }
            return std::string(v);
        }
        if (nl == std::string_view::npos) break;
        pos = nl + 1;
    }
    return {};
}

// A line of text starts with the field name (lower-case, colon included), without case.
bool has_field_line(std::string_view text, std::string_view name) {
    std::size_t pos = 0;
    while (pos < text.size()) {
        std::size_t nl = text.find('\n', pos);
        std::string_view line = text.substr(pos, (nl == std::string_view::npos ? text.size() : nl) - pos);
        if (line.size() >= name.size() && ascii::to_lower(line.substr(0, name.size())) == name) return true;
        if (nl == std::string_view::npos) break;
        pos = nl + 1;
    }
    return false;
}

// What a walk over the MIME tree collects.
struct Walk {
    explicit Walk(const BounceLimits& l) : limits(l) {}
    const BounceLimits& limits;
    std::size_t parts = 0;
    bool too_many = false;
    bool have_dsn = false, have_arf = false;
    DsnFields dsn;
    std::vector<std::string> arf_recipients;
    std::string arf_reporting_mta;
    std::string text, html;  // human-readable parts, decoded
    std::string message_id;  // of the returned message
    std::vector<std::string> original_to;
    std::string jmrp_recipient;
    // The first returned messages, in order: the part (owned by the tree) and its header fields.
    struct Returned {
        GMimePart* part;
        GPtr<GMimeObject> header;
    };
    std::vector<Returned> embedded;

    // The fields of an RFC 5965 feedback report that name the complainant and the reporter.
    void arf_fields(std::string_view body) {
        std::size_t pos = 0;
        while (pos < body.size()) {
            std::size_t nl = body.find('\n', pos);
            std::string_view line = body.substr(pos, (nl == std::string_view::npos ? body.size() : nl) - pos);
            std::string l = ascii::to_lower(line.substr(0, 20));
            if (l.starts_with("original-rcpt-to:") || l.starts_with("removal-recipient:"))
                for (auto& a : find_addresses(line.substr(line.find(':') + 1))) arf_recipients.push_back(a);
            else if (l.starts_with("reporting-mta:") && arf_reporting_mta.empty()) {
                std::string_view v = ascii::trim(line.substr(14));
                if (std::size_t semi = v.find(';'); semi != std::string_view::npos) v = ascii::trim(v.substr(semi + 1));
                arf_reporting_mta = v;
            }
            if (nl == std::string_view::npos) break;
            pos = nl + 1;
        }
    }

    void returned_headers(GMimeObject* o) {
        // Microsoft's complaint reports (JMRP) name the complainant in the returned message.
        if (jmrp_recipient.empty())
            if (auto a = find_addresses(header(o, "X-HmXmrOriginalRecipient")); !a.empty()) jmrp_recipient = a.front();
        if (message_id.empty()) message_id = last_message_id(o);
        if (original_to.empty()) original_to = find_addresses(header(o, "To"));
    }

    void visit(GMimeObject* o, int depth) {
        if (too_many || ++parts > limits.max_parts) {
            too_many = true;
            return;
        }
        if (GMIME_IS_MULTIPART(o)) {
            GMimeMultipart* mp = GMIME_MULTIPART(o);
            int n = g_mime_multipart_get_count(mp);
            for (int i = 0; i < n && !too_many; ++i) visit(g_mime_multipart_get_part(mp, i), depth + 1);
            return;
        }
        if (!GMIME_IS_PART(o)) return;
        GMimeContentType* ct = g_mime_object_get_content_type(o);
        GMimePart* part = GMIME_PART(o);
        if (returned_message(part, ct)) {
            // Its header fields only; its body says nothing about the bounce (unless it is a
            // report itself: forwarded_report parses it then).
            GPtr<GMimeObject> header = returned_header(part);
            if (!header) return;
            returned_headers(header.get());
            if (embedded.size() < 4) embedded.push_back({part, std::move(header)});
        } else if (g_mime_content_type_is_type(ct, "message", "delivery-status") ||
            g_mime_content_type_is_type(ct, "message", "global-delivery-status")) {
            DsnFields f = parse_delivery_status(part_bytes(part));
            if (dsn.reporting_mta.empty()) dsn.reporting_mta = f.reporting_mta;
            if (dsn.queue_id.empty()) dsn.queue_id = f.queue_id;
            for (auto& r : f.recipients) dsn.recipients.push_back(std::move(r));
            have_dsn = true;
        } else if (g_mime_content_type_is_type(ct, "message", "feedback-report")) {
            have_arf = true;
            arf_fields(part_bytes(part));
        } else if (g_mime_content_type_is_type(ct, "text", "rfc822-headers") ||
                   g_mime_content_type_is_type(ct, "message", "rfc822-headers") ||
                   g_mime_content_type_is_type(ct, "message", "global-headers")) {
            std::string h = part_bytes(part);
            if (message_id.empty()) message_id = find_message_id(h);
            if (original_to.empty()) {
                std::size_t to = ascii::to_lower(h).find("\nto:");
                if (to != std::string::npos)
                    original_to = find_addresses(h.substr(to + 4, h.find('\n', to + 4) - to - 4));
            }
        } else if (g_mime_content_type_is_type(ct, "text", "plain") ||
                   g_mime_content_type_is_type(ct, "text", "html")) {
            bool html_part = g_mime_content_type_is_type(ct, "text", "html");
            std::string& dst = html_part ? html : text;
            if (dst.size() >= kMaxText) return;
            std::string t = part_text(part);
            // The machine-readable ARF fields sent as text (RFC 5965 section 3.1's fields in a
            // text/plain part, or pasted after the human-readable words): a complaint report.
            if (!html_part && has_field_line(t, "feedback-type:")) {
                have_arf = true;
                arf_fields(t);
            }
            if (!dst.empty()) dst.push_back('\n');
            dst.append(t, 0, kMaxText);
        }
    }
};

// What GMime warned about while parsing, of what matters to a report.
struct ParseWarnings {
    bool truncated = false;  // the input ends inside a part
    bool too_deep = false;   // MIME parts nested beyond GMime's limit
};

void on_warning(gint64, GMimeParserWarning code, const gchar*, gpointer user) {
    auto* w = static_cast<ParseWarnings*>(user);
    if (code == GMIME_WARN_TRUNCATED_MESSAGE) w->truncated = true;
    if (code == GMIME_CRIT_NESTING_OVERFLOW) w->too_deep = true;
}

// Binary data is no mail: NUL bytes (more than the odd stray one that old MTAs leave at the
// end of a message), or control bytes and bytes that are not UTF-8 making up a tenth of the
// first kilobytes. 8-bit Latin-1 text stays well under that; random or compressed data (a tenth
// control bytes, nearly half stray high bytes) is far over it, so the verdict does not hang on
// chance.
bool looks_binary(std::string_view data) {
    std::string_view head = data.substr(0, 4096);
    std::size_t bad = 0, nul = 0;
    for (std::size_t i = 0; i < head.size();) {
        auto c = static_cast<unsigned char>(head[i]);
        if (c == 0) ++nul;
        else if (c < 0x20 && c != '\n' && c != '\r' && c != '\t' && c != '\f' && c != 0x1b) ++bad;
        if (c < 0x80) {
            ++i;
        } else if (std::size_t len = utf8_sequence(head, i)) {
            i += len;
        } else {
            ++bad;
            ++i;
        }
    }
    return nul * 100 > head.size() || (bad + nul) * 10 > head.size();
}

// The header block starts with a field name and a colon (or an mbox "From " line).
bool starts_like_message(std::string_view data) {
    if (data.starts_with("From ")) return true;
    std::size_t n = 0;
    while (n < data.size() && n < 80 && data[n] > ' ' && data[n] < 127 && data[n] != ':') ++n;
    return n > 0 && n < data.size() && data[n] == ':';
}

bool auto_reply_subject(std::string_view subject) {
    static constexpr std::array<std::string_view, 14> kWords = {"auto:",
                                                                "automatic reply",
                                                                "auto-reply",
                                                                "autoreply",
                                                                "auto reply",
                                                                "out of office",
                                                                "out of the office",
                                                                "away until",
                                                                "vacation",
                                                                "abwesenheit",
                                                                "réponse automatique",
                                                                "respuesta automática",
                                                                "risposta automatica",
                                                                "自動応答"};
    std::string s = ascii::to_lower(ascii::trim(subject));
    return std::any_of(kWords.begin(), kWords.end(), [&](std::string_view w) {
        return s.starts_with(w) || (w.size() > 8 && s.find(w) != std::string::npos);
    });
}

// The sender of bounces: MAILER-DAEMON, postmaster, "Mail Delivery System/Subsystem".
bool from_mail_system(std::string_view from) {
    std::string f = ascii::to_lower(from);
    return f.find("mailer-daemon") != std::string::npos || f.find("postmaster") != std::string::npos ||
           f.find("mail delivery") != std::string::npos || f.find("mail administrator") != std::string::npos;
}

// A list manager's notice (Mailman adds X-Mailman-Version to every message it sends; RFC 2919
// List-Id with a From at the list's -owner, -request or -bounces address, the conventions of
// Mailman, Sympa and ezmlm), from the list software rather than from the mail system.
bool list_manager_notice(GMimeObject* top) {
    if (!header(top, "X-Mailman-Version").empty()) return true;
    if (header(top, "List-Id").empty()) return false;
    std::string from = ascii::to_lower(header(top, "From"));
    return from.find("-owner@") != std::string::npos || from.find("-request@") != std::string::npos ||
           from.find("-bounces@") != std::string::npos || from.find("owner-") != std::string::npos;
}

bool bounce_subject(std::string_view subject) {
    static constexpr std::array<std::string_view, 14> kWords = {
        "undeliver",    "undelivered", "delivery",          "failure",
        "failed",       "returned",    "returning",         "bounce",
        "unzustellbar", "non remis",   "non distribuibile", "no se puede entregar",
        "error",        "notification"};
    std::string s = ascii::to_lower(subject);
    return std::any_of(kWords.begin(), kWords.end(),
                       [&](std::string_view w) { return s.find(w) != std::string::npos; });
}

// A warning that delivery is late, not that it failed ("Delivery Status Notification (Delay)",
// "Message will be retried for 2 more day(s)").
bool delay_wording(std::string_view text) {
    static constexpr std::array<std::string_view, 10> kWords = {
        "(delay)",          "delayed mail",       "delivery delayed",       "will be retried",
        "will retry",       "still trying",       "not yet been delivered", "temporary failure report",
        "warning: message", "delivery is delayed"};
    std::string s = ascii::to_lower(text);
    return std::any_of(kWords.begin(), kWords.end(),
                       [&](std::string_view w) { return s.find(w) != std::string::npos; });
}

}  // namespace

std::string_view to_string(ReportKind k) {
    switch (k) {
    case ReportKind::dsn: return "dsn";
    case ReportKind::non_standard: return "non-standard";
    case ReportKind::auto_reply: return "auto-reply";
    case ReportKind::feedback_report: return "feedback-report";
    }
    return "non-standard";
}

namespace {

constexpr int kMaxNesting = 3;  // bounces of bounces read, at most

// A returned message that is itself a delivery report (a bounce forwarded, or bounced again),
// by its header fields.
bool report_message(GMimeObject* header) {
    GMimeContentType* ct = g_mime_object_get_content_type(header);
    return ct && g_mime_content_type_is_type(ct, "multipart", "report");
}

// The text after a bounce's own words, when it is a whole pasted report (its header block, an
// mbox "From " line or a separator line first, and a delivery-status part in it).
std::string_view pasted_report(std::string_view rest) {
    std::size_t pos = 0;
    while (pos < rest.size()) {
        std::size_t nl = rest.find('\n', pos);
        std::string_view line = ascii::trim(rest.substr(pos, (nl == std::string_view::npos ? rest.size() : nl) - pos));
        bool separator = line.empty() || line.starts_with("From ") ||
                         std::all_of(line.begin(), line.end(), [](char c) { return c == '-' || c == '=' || c == '_'; });
        if (!separator) break;
        if (nl == std::string_view::npos) return {};
        pos = nl + 1;
    }
    std::string_view msg = rest.substr(pos);
    if (!starts_like_message(msg)) return {};
    std::string l = ascii::to_lower(msg.substr(0, 64 * 1024));
    if (l.find("message/delivery-status") == std::string::npos &&
        l.find("message/global-delivery-status") == std::string::npos)
        return {};
    return msg;
}

BounceReport parse_report(std::string_view data, const BounceLimits& limits, int depth);

}  // namespace

BounceReport parse_bounce_message(std::string_view data, const BounceLimits& limits) {
    return parse_report(data, limits, 0);
}

namespace {

// What every detector reads, computed once per message: the parsed tree, the walk over its
// parts, the human-readable text with the returned message cut off, the free-text recipients.
struct ReportFacts {
    const BounceLimits& limits;
    int depth;
    GPtr<GMimeObject> root;       // owns the tree: the top part, or the message around it
    GMimeObject* top = nullptr;   // where the bounce's own header fields are
    GMimeObject* body = nullptr;  // the top MIME part (top itself when parsed as a part)
    ParseWarnings warnings;
    Walk walk;
    std::string text;                 // the human-readable parts (or the prologue of a broken multipart)
    std::string_view human;           // text without the returned message pasted after it
    std::vector<std::string> ignore;  // the bounce's own From and To: not recipients
    FreeTextBounce free_text;

    ReportFacts(const BounceLimits& l, int d) : limits(l), depth(d), walk(l) {}
    std::string reason_for(std::string_view addr) const {
        for (const auto& r : free_text.recipients)
            if (ascii::iequals(r.recipient, addr)) return r.reason;
        return {};
    }
};

// The checks before any parsing: empty, binary, no header fields. Empty when none applies.
std::string refusal(std::string_view data) {
    if (ascii::trim(data).empty()) return "empty file";
    if (looks_binary(data)) return "binary data, not a mail message";
    if (!starts_like_message(ascii::trim(data.substr(0, 200)).empty() ? data
                                                                      : data.substr(data.find_first_not_of("\r\n"))))
        return "not a mail message: no header fields at the start";
    return {};
}

void set_date(GDateTime* d, BounceReport& out) {
    out.has_date = true;
    out.date = g_date_time_to_unix(d);
    out.date_offset = static_cast<std::int32_t>(g_date_time_get_utc_offset(d) / G_TIME_SPAN_SECOND);
}

// Subject and Date of a message parsed as a part, as GMimeMessage reads them: the value of the
// last Subject field; of the Date fields with a value, the last one's date (none if unreadable).
void subject_and_date(GMimeObject* top, BounceReport& out) {
    GMimeHeaderList* list = g_mime_object_get_header_list(top);
    const char* subject = nullptr;
    GDateTime* date = nullptr;
    for (int i = 0, n = g_mime_header_list_get_count(list); i < n; ++i) {
        GMimeHeader* h = g_mime_header_list_get_header_at(list, i);
        const char* name = g_mime_header_get_name(h);
        if (g_ascii_strcasecmp(name, "Subject") == 0) {
            subject = g_mime_header_get_value(h);
        } else if (g_ascii_strcasecmp(name, "Date") == 0) {
            if (const char* v = g_mime_header_get_value(h)) {
                if (date) g_date_time_unref(date);
                date = g_mime_utils_header_decode_date(v);
            }
        }
    }
    if (subject) out.subject = subject;
    if (date) {
        set_date(date, out);
        g_date_time_unref(date);
    }
}

// Whether a tree parsed without a warning callback is sure to have drawn none of the warnings
// ParseWarnings records. A warning callback costs: with one set, GMime decodes every header
// field of every part as it is added, to check it (a sixth of dsn's instructions). Truncation
// is warned of only where the parse meets the end of the input (a header block or a multipart
// cut short), and that end ends every multipart around it, so a top multipart closed by its end
// boundary, or a single part whose header block ends in a blank line, was not cut; nesting is
// warned of only far deeper (GMime's limit is over 500 levels) than kQuietDepth.
constexpr int kQuietDepth = 8;
bool shallow(GMimeObject* o, int depth) {
    if (depth >= kQuietDepth) return false;
    if (GMIME_IS_MULTIPART(o)) {
        GMimeMultipart* mp = GMIME_MULTIPART(o);
        for (int i = 0, n = g_mime_multipart_get_count(mp); i < n; ++i)
            if (!shallow(g_mime_multipart_get_part(mp, i), depth + 1)) return false;
    }
    return true;
}

bool surely_unwarned(GMimeObject* top, std::string_view data) {
    if (GMIME_IS_MULTIPART(top))
        return g_mime_object_get_content_type_parameter(top, "boundary") && GMIME_MULTIPART(top)->write_end_boundary &&
               shallow(top, 0);
    if (!GMIME_IS_PART(top)) return false;
    // GMime ends a header block at the first empty line ("\n" or "\r\n" at a line's start).
    return data.starts_with("\n") || data.starts_with("\r\n") || data.find("\n\n") != std::string_view::npos ||
           data.find("\n\r\n") != std::string_view::npos;
}

// Parses data into f's tree: as a MIME part, not a message. GMimeMessage parses every address
// field (From, To, Cc, Reply-To...) of its header into address lists as it is built, and its
// date and Message-ID, a seventh of dsn's instructions, none of it read here but Subject and
// Date (subject_and_date reads those as it does). Only the message parser takes an mbox "From "
// line before the header fields: such input, and any the part parser refuses, is parsed as a
// message. False when neither can parse it.
bool parse_tree(std::string_view data, ReportFacts& f, BounceReport& out) {
    auto parser_for = [&data] {
        GPtr<GMimeStream> stream(g_mime_stream_mem_new_with_buffer(data.data(), data.size()));
        GPtr<GMimeParser> parser(g_mime_parser_new_with_stream(stream.get()));
        g_mime_parser_set_format(parser.get(), GMIME_FORMAT_MESSAGE);
        return parser;
    };
    if (!data.starts_with("From ")) {
        // First without a warning callback; parsed again with one when it may have missed one.
        std::unique_ptr<GMimeParserOptions, OptionsFree> quiet(g_mime_parser_options_new());
        GPtr<GMimeObject> tree(g_mime_parser_construct_part(parser_for().get(), quiet.get()));
        if (tree && surely_unwarned(tree.get(), data)) {
            f.root = std::move(tree);
            f.top = f.body = f.root.get();
            subject_and_date(f.top, out);
            return true;
        }
    }
    std::unique_ptr<GMimeParserOptions, OptionsFree> opts(g_mime_parser_options_new());
    g_mime_parser_options_set_warning_callback(opts.get(), on_warning, &f.warnings);
    if (!data.starts_with("From ")) {
        f.root.reset(g_mime_parser_construct_part(parser_for().get(), opts.get()));
        if (f.root) {
            f.top = f.body = f.root.get();
            subject_and_date(f.top, out);
            return true;
        }
        f.warnings = {};
    }
    GMimeMessage* msg = g_mime_parser_construct_message(parser_for().get(), opts.get());
    if (!msg) return false;
    f.root.reset(GMIME_OBJECT(msg));
    f.top = f.root.get();
    f.body = g_mime_message_get_mime_part(msg);
    if (const char* s = g_mime_message_get_subject(msg)) out.subject = s;
    if (GDateTime* d = g_mime_message_get_date(msg)) set_date(d, out);  // owned by the message
    return true;
}

// Parses data into f and fills out's header facts; false after setting out.error.
bool read_facts(std::string_view data, ReportFacts& f, BounceReport& out) {
    init_gmime();
    if (!parse_tree(data, f, out)) {
        out.error = "not a mail message: GMime could not parse it";
        return false;
    }
    if (f.warnings.too_deep) {
        out.error = "MIME parts nested too deeply";
        return false;
    }
    Walk& w = f.walk;
    if (f.body) w.visit(f.body, 0);
    if (w.too_many) {
        out.error = "more than " + std::to_string(f.limits.max_parts) + " MIME parts";
        return false;
    }
    f.text = w.text.empty() && !w.html.empty() ? html_to_text(w.html) : std::move(w.text);
    // A boundary that matches no delimiter line leaves every part in the multipart's prologue:
    // read that as text, DSN fields and all.
    if (f.text.empty() && !w.have_dsn) {
        if (f.body && GMIME_IS_MULTIPART(f.body)) {
            if (const char* pro = g_mime_multipart_get_prologue(GMIME_MULTIPART(f.body)))
                f.text.assign(pro, strnlen(pro, kMaxText));
        }
    }
    // A single-part bounce pastes the returned message after its own words.
    f.human = cut_returned_message(f.text);
    const std::string_view text = f.text;
    if (w.message_id.empty() && f.human.size() < text.size())
        w.message_id = find_message_id(text.substr(f.human.size()));
    if (w.original_to.empty() && f.human.size() < text.size()) {
        std::string_view rest = text.substr(f.human.size());
        std::size_t to = ascii::to_lower(rest).find("\nto:");
        if (to != std::string_view::npos) {
            std::size_t end = rest.find('\n', to + 4);
            // Folded address lists continue on indented lines.
            while (end != std::string_view::npos && end + 1 < rest.size() &&
                   (rest[end + 1] == ' ' || rest[end + 1] == '\t'))
                end = rest.find('\n', end + 1);
            w.original_to = find_addresses(
                rest.substr(to + 4, end == std::string_view::npos ? std::string_view::npos : end - to - 4));
        }
    }
    out.message_id = w.message_id;
    f.ignore = find_addresses(header(f.top, "From"));
    for (auto& a : find_addresses(header(f.top, "To"))) f.ignore.push_back(a);
    f.free_text = parse_free_text_bounce(f.human, f.ignore);
    out.intro = f.free_text.intro;
    out.delay_notice = delay_wording(out.subject) || delay_wording(f.human.substr(0, 4096));
    return true;
}

// The detectors, in the order a report is recognised: each fills out and returns true when the
// message is its kind of report.

// An RFC 3464 delivery-status part.
bool dsn_part(ReportFacts& f, BounceReport& out) {
    Walk& w = f.walk;
    if (!w.have_dsn || w.dsn.recipients.empty()) return false;
    out.kind = ReportKind::dsn;
    out.reporting_mta = w.dsn.reporting_mta;
    out.queue_id = w.dsn.queue_id;
    // The block the input ended in lacks its Action and Status: its address may be cut too.
    // (A returned message cut short is common and harmless: only a cut report counts.)
    if (f.warnings.truncated && w.dsn.recipients.back().action.empty() && w.dsn.recipients.back().status.empty()) {
        w.dsn.recipients.pop_back();
        out.truncated = true;
    }
    for (auto& d : w.dsn.recipients) {
        BounceRecipient r{d.recipient(), d.action, d.status, d.diagnostic, d.remote_mta};
        // No Diagnostic-Code: what the human-readable part says below the final or the
        // original address (Sun and PMDF list both, the reason under the second), else the
        // Status field's comment ("Status: 5.0.0 (recipient reached disk quota)").
        if (r.diagnostic.empty()) {
            r.diagnostic = f.reason_for(r.recipient);
            if (!d.original_recipient.empty() && !ascii::iequals(d.original_recipient, r.recipient)) {
                std::string more = f.reason_for(d.original_recipient);
                if (!more.empty() && more != r.diagnostic)
                    r.diagnostic.append(r.diagnostic.empty() ? "" : " ").append(more);
            }
        }
        if (r.diagnostic.empty()) r.diagnostic = d.status_comment;
        out.recipients.push_back(std::move(r));
    }
    return true;
}

// A complaint report: a feedback-report part, its fields as text, or only the report type of
// the top multipart/report (RFC 6522) when the part carries another content type.
bool feedback_report(ReportFacts& f, BounceReport& out) {
    Walk& w = f.walk;
    GMimeObject* top_body = f.body;
    GMimeContentType* top_ct = top_body ? g_mime_object_get_content_type(top_body) : nullptr;
    if (!w.have_arf && !w.have_dsn && top_ct && g_mime_content_type_is_type(top_ct, "multipart", "report")) {
        const char* rt = g_mime_content_type_get_parameter(top_ct, "report-type");
        if (rt && ascii::to_lower(ascii::trim(rt)) == "feedback-report") w.have_arf = true;
    }
    if (!w.have_arf) return false;
    out.kind = ReportKind::feedback_report;
    out.reporting_mta = w.arf_reporting_mta;
    std::vector<std::string> rcpts = w.arf_recipients;
    if (rcpts.empty() && !w.jmrp_recipient.empty()) rcpts.push_back(w.jmrp_recipient);
    if (rcpts.empty()) rcpts = w.original_to;
    // Most reports redact the complainant: the report still stands, for an unknown recipient.
    if (rcpts.empty()) rcpts.emplace_back();
    for (auto& a : rcpts) out.recipients.push_back({a, {}, {}, {}, {}});
    return true;
}

// Amazon SES notifications: JSON in a text part (or the SNS envelope around it).
bool ses_notification(ReportFacts& f, BounceReport& out) {
    SesNotification ses;
    if (f.walk.have_dsn || !parse_ses_notification(std::string_view(f.text).substr(0, kMaxText), ses) ||
        ses.recipients.empty())
        return false;
    out.kind = ses.type == SesNotification::Type::complaint ? ReportKind::feedback_report : ReportKind::dsn;
    out.reporting_mta = ses.reporting_mta;
    if (!ses.message_id.empty()) out.message_id = ses.message_id;
    for (auto& r : ses.recipients) out.recipients.push_back({r.recipient(), r.action, r.status, r.diagnostic, {}});
    return true;
}

// A bounce that forwards another one, attached (message/rfc822) or pasted into its text: the
// inner report names the failed recipients and why.
bool forwarded_report(ReportFacts& f, BounceReport& out) {
    if (f.depth >= kMaxNesting) return false;
    auto use = [&](BounceReport inner) {
        if (!inner.error.empty() || inner.recipients.empty() ||
            (inner.kind != ReportKind::dsn && inner.kind != ReportKind::feedback_report))
            return false;
        out = std::move(inner);
        return true;
    };
    for (const Walk::Returned& r : f.walk.embedded)
        if (report_message(r.header.get()) && use(parse_report(part_bytes(r.part), f.limits, f.depth + 1))) return true;
    if (f.human.size() < f.text.size()) {
        std::string_view pasted = pasted_report(std::string_view(f.text).substr(f.human.size()));
        if (!pasted.empty() && use(parse_report(pasted, f.limits, f.depth + 1))) return true;
    }
    return false;
}

// DSN fields written into the text itself, as some MTAs do.
bool dsn_in_text(ReportFacts& f, BounceReport& out) {
    DsnFields d = parse_delivery_status(f.human);
    if (d.recipients.empty() || std::none_of(d.recipients.begin(), d.recipients.end(),
                                             [](auto& r) { return !r.action.empty() || !r.status.empty(); }))
        return false;
    out.kind = ReportKind::dsn;
    out.reporting_mta = d.reporting_mta;
    out.queue_id = d.queue_id;
    for (auto& r : d.recipients) {
        BounceRecipient b{r.recipient(), r.action, r.status, r.diagnostic, r.remote_mta};
        if (b.diagnostic.empty()) b.diagnostic = f.reason_for(b.recipient);
        out.recipients.push_back(std::move(b));
    }
    return true;
}

// An auto-reply. MTAs mark their bounces Auto-Submitted: auto-replied too: a message from the
// mail system, or one that names failed recipients, is a bounce whatever its headers say.
bool auto_reply(ReportFacts& f, BounceReport& out) {
    std::string auto_submitted = ascii::to_lower(header(f.top, "Auto-Submitted"));
    bool marked = auto_submitted.starts_with("auto-replied") || !header(f.top, "X-Autoreply").empty() ||
                  !header(f.top, "X-Autorespond").empty() ||
                  ascii::to_lower(header(f.top, "Precedence")) == "auto_reply" || auto_reply_subject(out.subject);
    if (!marked || !f.free_text.recipients.empty() || !header(f.top, "X-Failed-Recipients").empty() ||
        from_mail_system(header(f.top, "From")) || bounce_subject(out.subject))
        return false;
    out.kind = ReportKind::auto_reply;
    std::vector<std::string> from = find_addresses(header(f.top, "From"));
    if (!from.empty()) out.recipients.push_back({from.front(), {}, {}, {}, {}});
    return true;
}

// The rest: a free-text bounce, its recipients from the text, Exim's X-Failed-Recipients, the
// returned message's To, or the first address the text names.
void free_text_report(ReportFacts& f, BounceReport& out) {
    out.kind = ReportKind::non_standard;
    out.list_notice = !from_mail_system(header(f.top, "From")) && list_manager_notice(f.top);
    // Exim names the failed recipients in a header: other addresses its text shows (the
    // original sender, an alias it came from) are no recipients.
    std::vector<std::string> failed_header = find_addresses(header(f.top, "X-Failed-Recipients"));
    auto listed = [&](const std::string& a) {
        return std::any_of(failed_header.begin(), failed_header.end(), [&](auto& h) { return ascii::iequals(h, a); });
    };
    auto& ft = f.free_text.recipients;
    if (std::any_of(ft.begin(), ft.end(), [&](auto& r) { return listed(r.recipient); }))
        std::erase_if(ft, [&](auto& r) { return !listed(r.recipient); });
    for (auto& r : ft) out.recipients.push_back({r.recipient, {}, {}, r.reason, {}});
    if (out.recipients.empty()) {
        // Exim names them in a header even when its text gives only local parts.
        std::vector<std::string> rcpts = failed_header;
        if (rcpts.empty()) rcpts = f.walk.original_to;
        if (rcpts.empty()) {
            for (auto& a : find_addresses(f.human)) {
                bool skip =
                    std::any_of(f.ignore.begin(), f.ignore.end(), [&](auto& i) { return ascii::iequals(i, a); });
                if (!skip) {
                    rcpts.push_back(a);
                    break;
                }
            }
        }
        for (auto& a : rcpts) out.recipients.push_back({a, {}, {}, f.free_text.intro, {}});
    }
    if (out.recipients.empty() && f.warnings.truncated) out.truncated = true;
}

BounceReport parse_report(std::string_view data, const BounceLimits& limits, int depth) {
    BounceReport out;
    if (out.error = refusal(data); !out.error.empty()) return out;
    ReportFacts facts(limits, depth);
    if (!read_facts(data, facts, out)) return out;
    using Detector = bool (*)(ReportFacts&, BounceReport&);
    static constexpr Detector kDetectors[] = {dsn_part,         feedback_report, ses_notification,
                                              forwarded_report, dsn_in_text,     auto_reply};
    for (Detector detect : kDetectors)
        if (detect(facts, out)) return out;
    free_text_report(facts, out);
    return out;
}

}  // namespace

}  // namespace preflight
