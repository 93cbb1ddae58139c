// Envelope syntax: is MAIL FROM / RCPT TO an RFC 5321 path? (RFC 5321 4.1.2, RFC 6531 for UTF-8)
//
// Input: the address as libmilter hands it over (argv[0] of xxfi_envfrom / xxfi_envrcpt),
// normally "<local@domain>"; the bare form "local@domain" is tolerated, as Postfix does, and so
// is surrounding white space. Output: a verdict (501 5.1.7 sender / 501 5.1.3 recipient, or
// 553 5.6.7 for non-ASCII without SMTPUTF8) whose args.reason names the bad part, and for good
// addresses the normalised mailbox.
//
// Decisions:
//  - Source routes ("<@a,@b:user@dom>") are accepted and ignored, as RFC 5321 4.1.2 requires of
//    servers ("MUST BE accepted ... SHOULD be ignored"); their domains must still be well formed.
//  - Local part: dot-string or quoted-string, at most 64 octets as sent (4.5.3.1.1). Its case is
//    kept (local parts are case-sensitive); a quoted local part that needs no quotes is
//    normalised to its unquoted form ("john.doe"@x -> john.doe@x).
//  - Domain: LDH labels of 1-63 octets, no leading/trailing hyphen, at most 255 octets (4.5.3.1.2),
//    one trailing dot tolerated and stripped, lower-cased; an all-numeric top label is refused (an
//    IP address must be written [192.0.2.1]). xn-- A-labels are ordinary LDH labels.
//  - Address literals: [192.0.2.1] and [IPv6:...] (normalised by inet_ntop); other tags refused.
//  - UTF-8 (SMTPUTF8): well-formed UTF-8 is accepted in local part and domain only when the client
//    gave the SMTPUTF8 parameter; otherwise 553 5.6.7. Malformed UTF-8 is always a syntax error.
//    UTF-8 domain labels are converted to A-labels with Punycode (RFC 3492) so that DNS checks can
//    look the domain up; there is no IDNA2008 mapping or NFC normalisation (that needs libidn2):
//    a label is encoded as sent, which is right for the lower-case NFC labels IDNA2008 allows.
//  - Null path "<>": valid for MAIL FROM only. RCPT TO:<postmaster> without a domain is valid
//    (RFC 5321 4.5.1), with an empty domain.
//  - Input longer than 1024 octets is refused before any scanning (hostile clients).
#pragma once

#include <optional>
#include <string>
#include <string_view>

#include "verdict.hpp"

namespace preflight {

enum class AddressRole { sender, recipient };

struct Mailbox {
    bool null_path = false;        // "<>"
    std::string local_part;        // normalised (see above); "" for <>
    std::string domain;            // lower case, no trailing dot, A-label form; "[192.0.2.1]" or
                                   // "[IPv6:2001:db8::1]" for literals; "" for <> and <postmaster>
    std::string utf8_domain;       // the domain as sent (lower-cased ASCII) when it had UTF-8, else ""
    bool address_literal = false;  // domain is [...]: no DNS checks apply
    bool utf8 = false;             // local part or domain has non-ASCII characters

    std::string address() const;  // "local@domain", "" for <>
};

struct EnvelopeResult {
    Verdict verdict;                 // accept, or reject with the reply and args.reason
    std::optional<Mailbox> mailbox;  // set exactly when the verdict accepts
};

EnvelopeResult check_envelope_address(std::string_view path, AddressRole role, bool smtputf8);

// A domain name alone (also for conf "Domain" lines): the normalised A-label form, or nullopt
// and *reason says why. allow_utf8: accept (and convert) UTF-8 labels.
std::optional<std::string> normalise_domain(std::string_view domain, bool allow_utf8, std::string* reason);

// RFC 3492 Punycode of one label given in UTF-8 (without "xn--"), or nullopt if it is not UTF-8.
std::optional<std::string> punycode_encode(std::string_view utf8_label);

}  // namespace preflight
