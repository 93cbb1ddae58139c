#include "arg_parser.hpp"

#include <iostream>

namespace preflight {

ArgParser& ArgParser::flag(std::vector<std::string> names, std::function<void()> on) {
    entries_.push_back(Entry{std::move(names), false, std::move(on), {}});
    return *this;
}

ArgParser& ArgParser::option(std::vector<std::string> names, ValueHandler on) {
    entries_.push_back(Entry{std::move(names), true, {}, std::move(on)});
    return *this;
}

ArgParser& ArgParser::positional(std::function<void(const std::string&)> on) {
    on_positional_ = std::move(on);
    return *this;
}

const ArgParser::Entry* ArgParser::find(std::string_view name) const {
    for (const Entry& e : entries_)
        for (const std::string& n : e.names)
            if (n == name) return &e;
    return nullptr;
}

int ArgParser::error(const std::string& what) const {
    std::cerr << "preflight-classify " << command_ << ": " << what << "\n";
    return 2;
}

std::optional<int> ArgParser::parse(const std::vector<std::string>& args) const {
    for (std::size_t i = 0; i < args.size(); ++i) {
        const std::string& a = args[i];
        if (a == "-h" || a == "--help") {
            std::cout << usage_;
            return 0;
        }
        if (a == "--") {
            if (!on_positional_ && i + 1 < args.size()) return error("unexpected argument " + args[i + 1]);
            for (++i; i < args.size(); ++i) on_positional_(args[i]);
            break;
        }
        // "--name" is always an option; a single-dash word only when it is a declared short name
        // (a reply may start with '-', and "-" is stdin).
        const Entry* e = find(a);
        if (e || a.starts_with("--")) {
            if (!e) {
                std::cerr << "preflight-classify " << command_ << ": unknown option " << a << "\n" << usage_;
                return 2;
            }
            if (!e->takes_value) {
                e->on_flag();
                continue;
            }
            if (i + 1 >= args.size()) {
                std::cerr << "preflight-classify " << command_ << ": " << a << " needs a value\n" << usage_;
                return 2;
            }
            const std::string& v = args[++i];
            if (auto why = e->on_value(v)) return error(a + " " + v + ": " + *why);
            continue;
        }
        if (!on_positional_) return error("unexpected argument " + a);
        on_positional_(a);
    }
    return std::nullopt;
}

}  // namespace preflight
