// Results of the sender-authentication checks, as plain values: produced by the SPF and DKIM
// units (libspf2, libopendkim) and consumed by the AuthPolicy decision, which never sees a
// library handle.
#pragma once

#include <string>
#include <string_view>
#include <vector>

namespace preflight {

// RFC 7208 section 2.6.
enum class SpfResult { none, neutral, pass, fail, softfail, temperror, permerror };

struct SpfOutcome {
    SpfResult result = SpfResult::none;
    std::string explanation;  // why, for the log and the reply ("no SPF record", the failing mechanism...)
    // For the relay's egress addresses (check_spf_for_egress): those the record does not give
    // pass for, for good (not for a temperror), in EgressAddresses order; the reply names them.
    std::vector<std::string> unauthorized = {};
};

// What DKIM can say about a message for the sender domain.
enum class DkimResult {
    none,           // no signature for the sender domain, no key of ours published
    pass,           // a signature by the sender domain verifies
    fail,           // a signature by the sender domain is present but does not verify
    key_published,  // no valid signature yet, but one of DkimSelectors publishes our public key
                    // (the signer further down the path will sign)
    temperror,      // DNS trouble while fetching keys
    permerror,      // a key record that cannot be used (bad syntax, bad size)
};

struct DkimOutcome {
    DkimResult result = DkimResult::none;
    std::string selector;  // selector of the passing signature or the published key
    std::string explanation;
};

// One DKIM-Signature of a message, whatever its d= (DkimVerifier::signatures()): what DMARC
// alignment and the one-click unsubscribe check read.
struct DkimSignatureInfo {
    std::string domain;    // d=, lower case
    std::string selector;  // s=
    bool verified = false;
    std::vector<std::string> signed_headers;  // h=, lower case, in order
};

std::string_view to_string(SpfResult r);
std::string_view to_string(DkimResult r);

}  // namespace preflight
