// A site rule file (what --rules reads) through RuleSetBuilder::add_text and build(); a rule set
// that builds classifies a few replies. Bad input must come back as RuleError, nothing else.
#include <string>

#include "fuzz_common.hpp"
#include "reply_classifier.hpp"
#include "rule_set.hpp"

using namespace preflight;

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    if (size > 4096) return 0;  // RE2 compile time grows with the patterns; a site file is small
    const std::string_view text = fuzz::as_view(data, size);
    std::shared_ptr<const RuleSet> rules;
    try {
        RuleSetBuilder b;
        b.add_text("fuzz.rules", text);
        rules = b.build();
    } catch (const RuleError& e) {
        FUZZ_CHECK(*e.what() != '\0');
        return 0;
    }
    ReplyClassifier c(rules);
    static std::string scratch;
    for (std::string_view reply : {std::string_view("550 5.1.1 user unknown"), std::string_view("452 4.2.2 over quota"),
                                   std::string_view("421 try again later"), std::string_view("mailbox full"), text}) {
        for (Origin o : {Origin::remote, Origin::edge}) c.classify(reply, o, scratch);
    }
    return 0;
}
