// preflight.conf text through parse_config_text. Invariants: a config exactly when there are no
// errors; every error names the file; a parsed config answers lookups for any domain (the
// input's last line is used as one, too).
#include <string>

#include "config.hpp"
#include "fuzz_common.hpp"

using namespace preflight;

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    const std::string_view text = fuzz::as_view(data, size);
    ParseResult r = parse_config_text("fuzz.conf", text);
    FUZZ_CHECK(r.ok() == r.errors.empty());
    for (const ConfigError& e : r.errors) {
        FUZZ_CHECK(e.file == "fuzz.conf");
        std::string s = e.to_string();
        FUZZ_CHECK(s.rfind("fuzz.conf", 0) == 0);
    }
    if (!r.ok()) return 0;
    const Config& c = *r.config;
    std::string_view last = text.substr(text.rfind('\n') == std::string_view::npos ? 0 : text.rfind('\n') + 1);
    for (std::string_view d : {std::string_view("example.org"), std::string_view("a.b.example.net."),
                               std::string_view(""), std::string_view("."), last}) {
        const Settings& s = c.for_sender_domain(d);
        FUZZ_CHECK(s.max_recipients >= 1);
    }
    for (const Settings& s : c.overrides()) {
        // An exact Domain line is what its own domain gets.
        if (s.pattern.rfind("*.", 0) != 0) FUZZ_CHECK(c.for_sender_domain(s.pattern) == s);
    }
    (void)c.global().socket.libmilter();
    (void)c.global().socket.postfix();
    for (const Network& n : c.global().apply_to_networks) (void)n.to_string();
    return 0;
}
