#include "cli_common.hpp"

#include <iostream>

namespace preflight {

const std::string* option_value(const std::vector<std::string>& args, std::size_t& i,
                                std::string_view command, std::string_view usage) {
    if (i + 1 >= args.size()) {
        std::cerr << "preflight-classify " << command << ": " << args[i] << " needs a value\n" << usage;
        return nullptr;
    }
    return &args[++i];
}

std::shared_ptr<const RuleSet> load_rules(const std::vector<std::string>& site_files) {
    try {
        RuleSetBuilder builder;
        for (const auto& f : site_files) builder.add_file(f);
        return builder.add_shipped().build();
    } catch (const RuleError& e) {
        std::cerr << "preflight-classify: " << e.what() << "\n";
        return nullptr;
    }
}

}  // namespace preflight
