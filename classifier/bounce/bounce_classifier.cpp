#include "bounce_classifier.hpp"

#include "ascii.hpp"

#include <charconv>

namespace preflight {
namespace {

constexpr std::size_t kMaxDiagnostic = 1000;

std::string collapse(std::string_view s) {
    std::string out;
    for (char c : s) {
        if (out.size() >= kMaxDiagnostic) break;
        if (ascii::is_space(c)) {
            if (!out.empty() && out.back() != ' ') out.push_back(' ');
        } else {
            out.push_back(c);
        }
    }
    while (!out.empty() && out.back() == ' ') out.pop_back();
    return out;
}

// A DSN Status value; an empty one is no code (parse_enhanced_code accepts "" as absent).
bool status_code(std::string_view s, EnhancedCode& out) {
    EnhancedCode e;
    if (s.empty() || !parse_enhanced_code(s, e) || !e) return false;
    out = e;
    return true;
}

bool text_rule(const Classification& c) { return c.rule && c.rule->kind == Rule::Kind::text; }
bool failed(const Classification& c) { return c.error != Classification::Error::none; }

// An expiry ("I'm not going to try again; this message has been in the queue too long",
// "Message expired: unable to deliver in 840 minutes.<421 4.4.2 Connection timed out>") often
// quotes the error of the last attempt. With the expiry wording cut out, that error decides the
// category, the bounce type and the enhanced code; the status stays expired. A vague rest
// ("try again later", a category's bare default) changes nothing.
void refine_expired(const ReplyClassifier& cl, std::string_view text, Classification& c, std::string& scratch) {
    const RE2* expiry = cl.rules().expiry_text();
    if (!expiry || text.empty()) return;
    ParsedReply p;
    parse_reply(text, scratch, p);
    std::string rest(p.text);
    if (RE2::GlobalReplace(&rest, *expiry, " ") == 0) return;
    Classification last = cl.classify(reply_from_text(rest), Origin::remote, scratch);
    if (failed(last) || !text_rule(last) || last.status == Status::expired || last.status == Status::sent) return;
    if (last.category == Category::message_expired || last.category == Category::success) return;
    if (last.category == Category::other && last.rule->action_name.empty()) return;
    c.category = last.category;
    c.bounce = last.bounce;
    c.rule = last.rule;
    c.action = last.action;
    c.action_json = last.action_json;
    if (last.enhanced) c.enhanced = last.enhanced;
}

// The reply came in answer to MAIL FROM (Postfix "(in reply to MAIL FROM command)", Exim
// "SMTP error from remote mail server after MAIL FROM:<...>:"): it is about the sender, so no
// statement in it that an address or domain does not exist is about the recipient.
bool answers_mail_from(std::string_view text) {
    std::string l(text.substr(0, 2000));
    for (char& ch : l) ch = (ch >= 'A' && ch <= 'Z') ? static_cast<char>(ch + 32) : ch;
    return l.find("in reply to mail from") != std::string::npos || l.find("after mail from") != std::string::npos;
}

// The diagnostic read as an SMTP reply; else as free text with the codes it quotes put in front
// ("... said: 550 5.1.1 ..."). An enhanced code further into a reply that leads with a bare
// one ("550 #5.1.0 Address rejected") is taken too.
Classification read_diagnostic(const ReplyClassifier& cl, std::string_view diagnostic, std::string& scratch) {
    Classification c;
    c.error = Classification::Error::empty;
    if (diagnostic.empty()) return c;
    c = cl.classify(diagnostic, Origin::remote, scratch);
    if (failed(c) || (!c.code && !c.enhanced)) {
        Classification as_text = cl.classify(reply_from_text(diagnostic), Origin::remote, scratch);
        if (!failed(as_text) && (failed(c) || as_text.code || as_text.enhanced)) c = as_text;
    } else if (!c.enhanced) {
        EnhancedCode e;
        const std::string head = reply_from_text(diagnostic.substr(0, 300));
        std::string_view r = std::string_view(head).substr(0, 12);
        std::size_t sp = r.find(' ');
        if (sp != std::string_view::npos && sp == 3) r.remove_prefix(4);
        r = r.substr(0, r.find(' '));
        if (status_code(r, e) && e.cls == c.code / 100) c.enhanced = e;
    }
    return c;
}

// The DSN's Status code read in front of the diagnostic: instead of a diagnostic that said
// nothing readable, or ("Status: 5.1.1" beside "Diagnostic-Code: smtp; 550 Address rejected")
// in place of words that only a vague or a code rule matched, as that code would inside the reply.
void read_with_status(const ReplyClassifier& cl, std::string_view diagnostic, std::string_view status,
                      const EnhancedCode& st, Classification& c, std::string& scratch) {
    auto with_status = [&] {
        std::string r(status);
        r.push_back(' ');
        r.append(diagnostic);
        return cl.classify(r, Origin::remote, scratch);
    };
    if (failed(c)) {
        c = with_status();
    } else if (!c.enhanced && (st.subject || st.detail) && (!c.code || st.cls == c.code / 100) &&
               (!c.rule || c.rule->vague || c.rule->kind != Rule::Kind::text)) {
        Classification by_status = with_status();
        if (!failed(by_status) && by_status.rule && by_status.rule->kind == Rule::Kind::enhanced) {
            by_status.code = c.code;
            c = by_status;
        }
    }
}

// Only a code rule (or nothing) decided: the bounce's own words (its introduction) may say more,
// read behind the codes found so far. Returns the rule they matched, if any.
const Rule* read_intro(const ReplyClassifier& cl, std::string_view intro, std::string_view status, bool have_status,
                       Classification& c, std::string& scratch) {
    std::string r;
    if (!failed(c) && c.code) r.append(std::to_string(c.code)).push_back(' ');
    if (!failed(c) && c.enhanced) {
        char buf[12];
        r.append(buf, c.enhanced.format(buf)).push_back(' ');
    } else if (have_status) {
        r.append(status).push_back(' ');
    }
    if (r.empty()) r = reply_from_text(intro);
    else r.append(intro);
    Classification by_intro = cl.classify(r, Origin::remote, scratch);
    if (failed(c)) {
        if (!failed(by_intro)) c = by_intro;
    } else if (text_rule(by_intro) && by_intro.category != Category::other) {
        c.category = by_intro.category;
        c.bounce = by_intro.bounce;
        c.rule = by_intro.rule;
        if (by_intro.status == Status::expired) c.status = Status::expired;
    }
    return by_intro.rule;
}

// A recipient's verdict from what the bounce says of it. Each step classifies a different text:
// the diagnostic (as a reply, then as free text), the DSN Status in front of it, the bounce's
// introduction, the last error quoted inside an expiry; a step runs only when the ones before
// left the answer open, so most recipients take one or two classifier calls, five at most.
Classification classify_reason(const ReplyClassifier& cl, std::string_view diagnostic, std::string_view status,
                               std::string_view intro, std::string& scratch) {
    Classification c = read_diagnostic(cl, diagnostic, scratch);
    EnhancedCode st;
    const bool have_status = status_code(status, st);
    if (have_status) read_with_status(cl, diagnostic, status, st, c, scratch);
    const Rule* intro_rule = nullptr;  // the rule the bounce's introduction matched, if read
    if (!text_rule(c) && !intro.empty()) intro_rule = read_intro(cl, intro, status, have_status, c, scratch);
    if (!failed(c) &&
        (c.category == Category::bad_mailbox || c.category == Category::bad_domain ||
         c.category == Category::inactive_mailbox) &&
        answers_mail_from(diagnostic)) {
        c.category = Category::invalid_sender;
        c.bounce = default_bounce(c.category);
        c.action = cl.rules().category_action(c.category);
        c.action_json = cl.rules().category_action_json(c.category);
    }
    if (!failed(c) && c.status == Status::expired && text_rule(c))
        refine_expired(cl, c.rule == intro_rule ? intro : diagnostic, c, scratch);
    // The receiver's own code in the diagnostic is the most specific; the DSN Status (often
    // the reporting MTA's generic X.0.0) only fills in when the text has none.
    if (have_status && (!c.enhanced || (c.enhanced.subject == 0 && c.enhanced.detail == 0 && c.enhanced.cls == st.cls)))
        c.enhanced = st;
    return c;
}

void append_int_or_null(std::string& out, int v) {
    if (!v) {
        out.append("null");
        return;
    }
    char buf[16];
    auto r = std::to_chars(buf, buf + sizeof buf, v);
    out.append(buf, r.ptr);
}

void append_string_or_null(std::string& out, std::string_view s) {
    if (s.empty()) out.append("null");
    else append_json_string(out, s);
}

}  // namespace

std::vector<BounceVerdict> classify_bounce(const BounceReport& report, const ReplyClassifier& cl,
                                           std::string& scratch) {
    std::vector<BounceVerdict> out;
    out.reserve(report.recipients.size());
    for (const BounceRecipient& r : report.recipients) {
        BounceVerdict v;
        v.recipient = &r;
        v.diagnostic = collapse(r.diagnostic);
        EnhancedCode st;
        if (report.kind == ReportKind::auto_reply || report.kind == ReportKind::feedback_report) {
            // Not a delivery failure: the message arrived and someone (or something) answered.
            v.status = Status::sent;
            v.bounce = Bounce::none;
            v.category = report.kind == ReportKind::feedback_report ? Category::spam_related : Category::success;
            out.push_back(std::move(v));
            continue;
        }
        if (r.action == "delivered" || r.action == "relayed" || r.action == "expanded") {
            v.status = Status::sent;
            v.bounce = Bounce::none;
            v.category = Category::success;
            if (status_code(r.status, st)) v.enhanced = st;
            out.push_back(std::move(v));
            continue;
        }
        // A free-text bounce has no Action: it returns the message, unless it says it still tries.
        std::string_view action = r.action;
        if (action.empty()) action = report.delay_notice ? "delayed" : "failed";
        Classification c = classify_reason(cl, r.diagnostic, r.status, report.intro, scratch);
        // Nothing to go on: a failure of unknown cause, which must not suppress the address. A
        // list manager's notice whose words no text rule knows: the list refused or held the post
        // by its own policy; the list address exists, so never a hard bounce either.
        const bool list_policy = report.list_notice && !text_rule(c);
        // A delay notice whose words name no cause: the message is late, and that is all it says.
        const bool late_only = action == "delayed" && (failed(c) || c.category == Category::other);
        if (failed(c) || list_policy || late_only) {
            v.status = action == "delayed" ? Status::deferred : Status::bounce;
            v.bounce = Bounce::soft;
            v.category = late_only     ? Category::message_expired
                         : list_policy ? Category::policy_related
                                       : Category::other;
            if (!failed(c)) v.code = c.code;
            if (late_only && !failed(c)) v.rule = c.rule;
            // A delay keeps a reported code only of class 4.
            if (!status_code(r.status, v.enhanced) || (late_only && v.enhanced.cls != 4)) {
                v.enhanced = derived_enhanced_code(v.category, v.status == Status::deferred ? 4 : 5);
                v.enhanced_derived = true;
            }
            out.push_back(std::move(v));
            continue;
        }
        v.code = c.code;
        v.enhanced = c.enhanced;
        v.category = c.category;
        v.bounce = c.bounce;
        v.rule = c.rule;
        int cls = c.code ? c.code / 100 : c.enhanced.cls;
        if (action == "delayed") {
            v.status = Status::deferred;
            if (v.bounce == Bounce::hard) v.bounce = Bounce::soft;
        } else if (c.status == Status::expired) {
            v.status = Status::expired;
        } else if (c.status == Status::rejected) {
            // A rule with status=rejected: the sending side's own relay refused (preflight-milter's
            // replies), whatever its class; no receiver ever saw the message.
            v.status = Status::rejected;
        } else if (action == "failed") {
            // A temporary reply that ends in failure: the relay ran out of retries.
            v.status = cls == 4 ? Status::expired : Status::bounce;
        } else {
            v.status = c.status == Status::sent ? Status::sent : cls == 4 ? Status::deferred : Status::bounce;
        }
        if (v.status == Status::sent) v.bounce = Bounce::none;
        else if (v.bounce == Bounce::none) v.bounce = Bounce::soft;
        // No enhanced code anywhere: the one the decided category names, of the reply's class.
        if (!v.enhanced) {
            v.enhanced = derived_enhanced_code(v.category, cls == 2 || cls == 4 || cls == 5 ? cls
                                                           : v.status == Status::deferred   ? 4
                                                                                            : 5);
            v.enhanced_derived = true;
        }
        out.push_back(std::move(v));
    }
    return out;
}

void append_verdict_header(std::string& out, Format f) {
    if (f == Format::text)
        out.append("STATUS    BOUNCE  CATEGORY             CODE  ENHANCED  KIND             RECIPIENT\n");
    else if (f == Format::tsv)
        out.append(
            "file\trecipient\tstatus\tbounce\tcategory\tcode\tenhanced\tdiagnostic\tremote_mta\treporting_mta\tmessage_id\tkind\n");
}

void append_verdict(std::string& out, Format f, std::string_view file, const BounceReport& report,
                    const BounceVerdict& v) {
    char enh[12];
    std::string_view enhanced(enh, v.enhanced ? v.enhanced.format(enh) : 0);
    const BounceRecipient& r = *v.recipient;
    if (f == Format::json) {
        out.append("{\"file\": ");
        append_json_string(out, file);
        out.append(", \"recipient\": ");
        append_string_or_null(out, r.recipient);
        out.append(", \"status\": \"").append(to_string(v.status));
        out.append("\", \"bounce\": \"").append(to_string(v.bounce));
        out.append("\", \"category\": \"").append(to_string(v.category)).append("\", \"code\": ");
        append_int_or_null(out, v.code);
        out.append(", \"enhanced\": ");
        append_string_or_null(out, enhanced);
        if (v.enhanced)
            out.append(v.enhanced_derived ? ", \"enhanced_source\": \"derived\""
                                          : ", \"enhanced_source\": \"reported\"");
        else out.append(", \"enhanced_source\": null");
        out.append(", \"diagnostic\": ");
        append_string_or_null(out, v.diagnostic);
        out.append(", \"remote_mta\": ");
        append_string_or_null(out, r.remote_mta);
        out.append(", \"reporting_mta\": ");
        append_string_or_null(out, report.reporting_mta);
        out.append(", \"message_id\": ");
        append_string_or_null(out, report.message_id);
        out.append(", \"queue_id\": ");
        append_string_or_null(out, report.queue_id);
        out.append(", \"kind\": \"").append(to_string(report.kind)).append("\"}\n");
        return;
    }
    if (f == Format::tsv) {
        auto field = [&](std::string_view s, bool last = false) {
            append_tsv_field(out, s);
            out.push_back(last ? '\n' : '\t');
        };
        field(file);
        field(r.recipient);
        field(to_string(v.status));
        field(to_string(v.bounce));
        field(to_string(v.category));
        field(v.code ? std::to_string(v.code) : std::string());
        field(enhanced);
        field(v.diagnostic);
        field(r.remote_mta);
        field(report.reporting_mta);
        field(report.message_id);
        field(to_string(report.kind), true);
        return;
    }
    auto col = [&](std::string_view s, std::size_t width) {
        out.append(s);
        out.append(s.size() < width ? width - s.size() : 1, ' ');
    };
    col(to_string(v.status), 10);
    col(to_string(v.bounce), 8);
    col(to_string(v.category), 21);
    col(v.code ? std::to_string(v.code) : std::string("-"), 6);
    col(enhanced.empty() ? std::string_view("-") : enhanced, 10);
    col(to_string(report.kind), 17);
    append_tsv_field(out, r.recipient.empty() ? std::string_view("-") : std::string_view(r.recipient));
    out.append("\n          ");
    append_tsv_field(out, file);
    if (!v.diagnostic.empty()) {
        out.append(": ");
        append_tsv_field(out, std::string_view(v.diagnostic).substr(0, 200));
    }
    out.push_back('\n');
}

void append_file_error(std::string& out, Format f, std::string_view file, std::string_view error) {
    if (f == Format::json) {
        out.append("{\"file\": ");
        append_json_string(out, file);
        out.append(", \"error\": ");
        append_json_string(out, error);
        out.append("}\n");
    } else if (f == Format::tsv) {
        append_tsv_field(out, file);
        out.append("\t\terror\t\t\t\t\t");
        append_tsv_field(out, error);
        out.append("\t\t\t\t\n");
    } else {
        out.append("error     -       -                    -     -         -                ");
        append_tsv_field(out, file);
        out.append("\n          ");
        append_tsv_field(out, error);
        out.push_back('\n');
    }
}

}  // namespace preflight
