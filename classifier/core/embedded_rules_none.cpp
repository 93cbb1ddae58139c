// No built-in rule database: linked into preflight-compile-rules, which makes it.
#include "text_engine_impl.hpp"

namespace preflight {
const EmbeddedDatabase kShippedHyperscanDatabase{nullptr, 0, 0};
const EmbeddedDatabase kShippedPrefilterDatabase{nullptr, 0, 0};
const EmbeddedDatabase kShippedPrefilterTables{nullptr, 0, 0};
}  // namespace preflight
