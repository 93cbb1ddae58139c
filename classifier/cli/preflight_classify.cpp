// preflight-classify: tells a relay what a downstream reply means.
#include <iostream>
#include <string>
#include <vector>

#include "dsn_command.hpp"
#include "log_command.hpp"
#include "reply_command.hpp"
#include "serve_command.hpp"
#include "suppress_command.hpp"
#include "text_engine.hpp"

#ifndef PREFLIGHT_VERSION
#define PREFLIGHT_VERSION "0"
#endif

namespace {

const char kUsage[] =
    "usage: preflight-classify COMMAND [ARGS]\n"
    "commands:\n"
    "  reply   classify SMTP replies (arguments or stdin, one per line)\n"
    "  dsn     classify bounce messages: DSNs, non-standard bounces, auto-replies, ARF reports\n"
    "  log     one row per recipient with its final state from Postfix logs\n"
    "  serve   Postfix socketmap server for the delivery status filter\n"
    "  suppress  the suppression list: list, add, remove, import, export, stats\n"
    "run 'preflight-classify COMMAND --help' for a command's options\n";

}  // namespace

int main(int argc, char** argv) {
    std::vector<std::string> args(argv + 1, argv + argc);
    if (args.empty()) {
        std::cerr << kUsage;
        return 2;
    }
    const std::string cmd = args.front();
    args.erase(args.begin());
    if (cmd == "reply") return preflight::run_reply_command(args);
    if (cmd == "dsn") return preflight::run_dsn_command(args);
    if (cmd == "log") return preflight::run_log_command(args, preflight::load_dsn_records);
    if (cmd == "serve") return preflight::run_serve_command(args);
    if (cmd == "suppress") return preflight::run_suppress_command(args);
    if (cmd == "-h" || cmd == "--help") {
        std::cout << kUsage;
        return 0;
    }
    if (cmd == "--version") {
        std::cout << "preflight-classify " PREFLIGHT_VERSION "\n"
                  << "rule engine: " << preflight::text_engine_description() << "\n";
        return 0;
    }
    std::cerr << "preflight-classify: unknown command '" << cmd << "'\n" << kUsage;
    return 2;
}
