// DKIM for the sender domain, through libopendkim with its DNS query service replaced by ours:
// key lookups go to the given Resolver (normally the shared CachingResolver), whose raw reply
// (DnsAnswer::wire) is handed to libopendkim's own parser.
//
// Two questions, one per function:
//  - DkimVerifier: does the message carry a DKIM signature for the sender domain that
//    verifies? "For the sender domain" is relaxed alignment as in RFC 7489 3.1.1, without a
//    public-suffix list: d= equals the sender domain, or one of them is a subdomain of the
//    other and the shorter one has at least two labels (so a.example.org and example.org
//    align, a.example.org and b.example.org do not — stricter than DMARC, never looser).
//    Result: pass if any aligned signature verifies; else temperror if a key could not be
//    fetched (DNS trouble); else fail if an aligned signature is present; else none.
//  - dkim_key_published: does the domain publish our signing key at one of the selectors
//    (the signer further down the path will sign)?
//
// Threads: one DKIM_LIB for the process (created on first use, thread-safe as libopendkim
// documents); one DkimVerifier (and one DKIM handle) per message, used by one thread. The
// query hooks find the message's resolver through a thread-local pointer that the verifier
// sets only while it is inside libopendkim.
#pragma once

#include "auth_results.hpp"
#include "dns.hpp"

#include <memory>
#include <string>
#include <string_view>
#include <vector>

namespace preflight {

// True when a signature by d_domain counts for sender_domain (see above). Both any case,
// trailing dot optional.
bool dkim_domain_aligned(std::string_view d_domain, std::string_view sender_domain);

class DkimVerifier {
public:
    // id appears in libopendkim's own messages only (e.g. the queue id).
    explicit DkimVerifier(Resolver& resolver, std::string_view id = "preflight");
    ~DkimVerifier();
    DkimVerifier(const DkimVerifier&) = delete;
    DkimVerifier& operator=(const DkimVerifier&) = delete;

    // One header field as the milter hands it over: name without colon, value as received
    // (folding kept; a leading blank is kept if present, one is added if not). Headers are
    // held until end_of_headers(), so a message without DKIM-Signature costs no library work.
    void header(std::string_view name, std::string_view value);
    void end_of_headers();
    // True after end_of_headers() when there is a signature to verify, i.e. body() matters.
    bool wants_body() const;
    // The TXT names verification asks for the keys ("SELECTOR._domainkey.DOMAIN", lower
    // case), from the s= and d= of the DKIM-Signature headers given so far, in the message's
    // order, without repeats (at most 8). For a caller that fetches them with other lookups
    // at once before end_of_headers(), where libopendkim starts fetching keys.
    const std::vector<std::string>& key_names() const;
    // A piece of the body (CRLF or LF line ends).
    void body(std::string_view chunk);
    // Verify (key lookups happen here) and judge for sender_domain. Call once; later calls
    // return the first result.
    DkimOutcome finish(std::string_view sender_domain);
    // Every signature libopendkim parsed, in the message's order, once finish() has run
    // (empty before, and for a message without a usable signature).
    const std::vector<DkimSignatureInfo>& signatures() const;

    struct State;

private:
    std::unique_ptr<State> s_;
};

// Does one of selectors publish, at SELECTOR._domainkey.DOMAIN, a TXT key record whose p=
// equals our_public_key_base64 (base64 of the DER public key; whitespace and PEM armour are
// ignored on both sides)? key_published (selector set) if one does and it is usable;
// temperror if no selector has it and some lookup had DNS trouble; permerror if a record is
// unusable (not a key record, several records, bad base64, revoked, unknown k=, RSA under
// 1024 bits — including our own key published that way); none otherwise.
DkimOutcome dkim_key_published(Resolver& resolver, std::string_view domain, const std::vector<std::string>& selectors,
                               std::string_view our_public_key_base64);

}  // namespace preflight
