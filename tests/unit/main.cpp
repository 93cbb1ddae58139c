// The unit test runner: Catch2's own, plus one job of ours.
//
//   TEST_EXE --write-ctest-file PREFIX EXE_PATH OUT.cmake
//
// writes one CTest add_test() per visible test case (cmake/CatchTests.cmake runs it after every
// link). Catch2's catch_discover_tests takes the names apart as CMake lists, so a name with a
// ';' became several filters that matched nothing, and a '"' or '\' broke the filter: those
// cases never ran and ctest counted them as passed. Here each name goes out whole, inside a CMake
// bracket argument, and the filter that selects it is quoted and escaped. Before writing
// anything, each filter is parsed by Catch itself and must select exactly its own case; each
// entry also runs with -w NoTests, so a filter that matches nothing fails instead of passing.
#define CATCH_CONFIG_RUNNER
#include <catch2/catch.hpp>

#include <cstdio>
#include <fstream>
#include <iostream>
#include <string>
#include <string_view>

namespace {

// A Catch2 test spec that matches NAME: quoted (so '[', '~' and blanks are plain characters),
// with the three characters that still mean something inside quotes escaped: ',' (or), '"' and
// '\'.
std::string exact_filter(const std::string& name) {
    std::string f = "\"";
    for (char c : name) {
        if (c == ',' || c == '"' || c == '\\') f += '\\';
        f += c;
    }
    f += '"';
    return f;
}

// TEXT as a CMake bracket argument: [==[TEXT]==] with as many '=' as needed that TEXT
// cannot close it early. Nothing inside is expanded or split at ';'.
std::string bracket(const std::string& text) {
    std::string eq;
    while (text.find("]" + eq + "]") != std::string::npos) eq += '=';
    return "[" + eq + "[" + text + "]" + eq + "]";
}

int write_ctest_file(const std::string& prefix, const std::string& exe, const std::string& out) {
    Catch::Session session;
    const char* no_args[] = {"unit_tests"};
    if (session.applyCommandLine(1, no_args) != 0) return 1;
    const Catch::IConfig& config = session.config();
    const auto& all = Catch::getAllTestCasesSorted(config);
    // What a plain run would run: every case but the hidden ones ([.tag]), which have entries
    // of their own that provide what they need (a Redis, say).
    const auto visible = Catch::filterTests(all, config.testSpec(), config);

    const std::string tmp = out + ".tmp";
    std::ofstream file(tmp, std::ios::trunc);
    if (!file) {
        std::cerr << "--write-ctest-file: cannot write " << tmp << "\n";
        return 1;
    }
    file << "# Written by " << exe << " --write-ctest-file; do not edit.\n";
    for (const auto& test : visible) {
        const std::string& name = test.getTestCaseInfo().name;
        const std::string filter = exact_filter(name);
        const Catch::TestSpec spec = Catch::TestSpecParser(Catch::ITagAliasRegistry::get()).parse(filter).testSpec();
        std::size_t matched = 0;
        bool self = false;
        for (const auto& other : all) {
            if (spec.matches(other.getTestCaseInfo())) {
                ++matched;
                self = self || other.getTestCaseInfo().name == name;
            }
        }
        if (matched != 1 || !self) {
            std::cerr << test.getTestCaseInfo().lineInfo.file << ":" << test.getTestCaseInfo().lineInfo.line
                      << ": the filter for test case \"" << name << "\" selects " << matched << " cases"
                      << (self ? "" : ", not itself")
                      << " (Catch2 compares names without case and treats a leading or trailing '*' "
                         "as a wildcard: rename it)\n";
            file.close();
            std::remove(tmp.c_str());
            return 1;
        }
        file << "add_test(" << bracket(prefix + name) << " " << bracket(exe) << " " << bracket(filter)
             << " -w NoTests)\n";
    }
    file.close();
    if (!file || std::rename(tmp.c_str(), out.c_str()) != 0) {
        std::cerr << "--write-ctest-file: cannot write " << out << "\n";
        std::remove(tmp.c_str());
        return 1;
    }
    return 0;
}

}  // namespace

int main(int argc, char* argv[]) {
    if (argc >= 2 && std::string_view(argv[1]) == "--write-ctest-file") {
        if (argc != 5) {
            std::cerr << "usage: " << argv[0] << " --write-ctest-file PREFIX EXE_PATH OUT.cmake\n";
            return 2;
        }
        return write_ctest_file(argv[2], argv[3], argv[4]);
    }
    return Catch::Session().run(argc, argv);
}
