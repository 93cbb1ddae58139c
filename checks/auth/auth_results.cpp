#include "auth_results.hpp"

namespace preflight {

// The words of RFC 8601 (Authentication-Results) where one exists, so logs read like headers.
std::string_view to_string(SpfResult r) {
    switch (r) {
    case SpfResult::none: return "none";
    case SpfResult::neutral: return "neutral";
    case SpfResult::pass: return "pass";
    case SpfResult::fail: return "fail";
    case SpfResult::softfail: return "softfail";
    case SpfResult::temperror: return "temperror";
    case SpfResult::permerror: return "permerror";
    }
    return "unknown";
}

std::string_view to_string(DkimResult r) {
    switch (r) {
    case DkimResult::none: return "none";
    case DkimResult::pass: return "pass";
    case DkimResult::fail: return "fail";
    case DkimResult::key_published: return "key_published";
    case DkimResult::temperror: return "temperror";
    case DkimResult::permerror: return "permerror";
    }
    return "unknown";
}

}  // namespace preflight
