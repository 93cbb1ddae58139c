// The engines behind text_engine.hpp; only text_engine.cpp chooses between them.
#pragma once

#include <re2/re2.h>

#include "text_engine.hpp"

namespace preflight {

// How every rule pattern is read by RE2 (the RE2 engine, the site patterns' check, the expiry
// wording): case-insensitive, errors returned, not logged.
RE2::Options rule_re2_options();

std::unique_ptr<TextEngine> compile_re2_engine(const std::vector<TextPattern>& patterns);
#ifdef PREFLIGHT_HAVE_HYPERSCAN
// ascii_path false: every text scanned with the whole database ("hyperscan-whole", for the
// tests that check the ASCII path against it). eager_checks: a nominated pattern is checked by
// RE2 from its first use, never by the whole database ("hyperscan-eager", for those tests: the
// RE2 checks are what can differ from the database, and a short run would not reach them).
std::unique_ptr<TextEngine> compile_hyperscan_engine(const std::vector<TextPattern>& patterns, bool ascii_path = true,
                                                     bool eager_checks = false);
std::string hyperscan_version();

// The shipped rules' Hyperscan database, compiled when the program was built (for any x86-64
// CPU) by preflight-compile-rules and linked in: a one-shot run starts without compiling. The
// engine uses it only when the fingerprint of the shipped patterns it is given is the same.
struct EmbeddedDatabase {
    const char* bytes;
    std::size_t size;  // 0: none built in (the compiler tool itself)
    std::uint64_t fingerprint;
};
extern const EmbeddedDatabase kShippedHyperscanDatabase;
// The shipped rules' ASCII prefilter (ascii_prefilter.hpp), likewise: its literal database, and
// the prefilter itself as prefilter_to_bytes() writes it (fingerprint: of the patterns).
extern const EmbeddedDatabase kShippedPrefilterDatabase;
extern const EmbeddedDatabase kShippedPrefilterTables;

// FNV-1a over the patterns and the flags they are compiled with.
std::uint64_t pattern_fingerprint(const std::vector<TextPattern>& patterns);
// The patterns compiled for a generic x86-64 target and serialized. Throws RuleError.
std::string serialize_hyperscan_database(const std::vector<TextPattern>& patterns);
// The same for the literals of their ASCII prefilter (empty: no literals), and its fingerprint.
std::string serialize_prefilter_database(const std::vector<TextPattern>& patterns);
std::uint64_t prefilter_fingerprint(const std::vector<TextPattern>& patterns);
// The prefilter of the patterns as bytes, and the fingerprint those bytes are embedded with.
std::string serialize_prefilter_tables(const std::vector<TextPattern>& patterns);
std::uint64_t prefilter_tables_fingerprint(const std::vector<TextPattern>& patterns);
#endif

}  // namespace preflight
