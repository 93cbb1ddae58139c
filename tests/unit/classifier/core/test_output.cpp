#include <catch2/catch.hpp>

#include "output.hpp"

using namespace preflight;

TEST_CASE("JSON strings are always valid JSON", "[output]") {
    auto js = [](std::string_view s) {
        std::string out;
        append_json_string(out, s);
        return out;
    };
    CHECK(js("plain") == "\"plain\"");
    CHECK(js("a\"b\\c") == "\"a\\\"b\\\\c\"");
    CHECK(js("l1\r\nl2\tx") == "\"l1\\r\\nl2\\tx\"");
    CHECK(js(std::string_view("nul\0x\x1f", 6)) == "\"nul\\u0000x\\u001f\"");
    CHECK(js("Benutzer unbekannt: Größe") == "\"Benutzer unbekannt: Größe\"");
    CHECK(js("Пользователь") == "\"Пользователь\"");
    // Invalid UTF-8: lone continuation, truncated sequence, overlong, surrogate, > U+10FFFF.
    CHECK(js("a\x80z") == "\"a\xEF\xBF\xBDz\"");
    CHECK(js("a\xC3") == "\"a\xEF\xBF\xBD\"");
    CHECK(js("\xC0\xAF") == "\"\xEF\xBF\xBD\xEF\xBF\xBD\"");
    CHECK(js("\xED\xA0\x80") == "\"\xEF\xBF\xBD\xEF\xBF\xBD\xEF\xBF\xBD\"");
    CHECK(js("\xF4\x90\x80\x80") == "\"\xEF\xBF\xBD\xEF\xBF\xBD\xEF\xBF\xBD\xEF\xBF\xBD\"");
    CHECK(js("\xF0\x9F\x93\xA7") == "\"\xF0\x9F\x93\xA7\"");
}

TEST_CASE("JSON result has exactly the documented fields", "[output]") {
    auto rs =
        RuleSetBuilder().add_text("t.rules", "action bad-mailbox Suppress.\nbad-mailbox enhanced 5.1.1\n").build();
    std::string scratch, out;
    ReplyClassifier cl(rs);
    ResultWriter w(Format::json);
    w.result(out, "550 5.1.1 gone", cl.classify("550 5.1.1 gone", Origin::remote, scratch));
    CHECK(
        out ==
        "{\"reply\": \"550 5.1.1 gone\", \"status\": \"bounce\", \"bounce\": \"hard\", \"category\": \"bad-mailbox\", "
        "\"code\": 550, \"enhanced\": \"5.1.1\", \"enhanced_source\": \"reported\", \"retry\": false, \"action\": \"Suppress.\", \"rule\": \"t.rules:2\"}\n");
    out.clear();
    w.result(out, "451 later", cl.classify("451 later", Origin::remote, scratch));
    CHECK(
        out ==
        "{\"reply\": \"451 later\", \"status\": \"deferred\", \"bounce\": \"soft\", \"category\": \"other\", "
        "\"code\": 451, \"enhanced\": \"4.0.0\", \"enhanced_source\": \"derived\", \"retry\": true, \"action\": \"\", \"rule\": null}\n");
    out.clear();
    w.error(out, "junk", "no SMTP reply code and no rule matches the text", 7);
    CHECK(out == "{\"error\": \"no SMTP reply code and no rule matches the text\", \"line\": 7}\n");
}

TEST_CASE("TSV fields escape tabs and newlines", "[output]") {
    std::string out;
    append_tsv_field(out, "a\tb\nc\\d");
    CHECK(out == "a\\tb\\nc\\\\d");
}
