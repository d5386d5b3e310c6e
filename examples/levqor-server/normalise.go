package main

import (
	"errors"
	"strings"
	"unicode"
	"unicode/utf8"

	"golang.org/x/net/idna"
	"golang.org/x/text/unicode/norm"
)

// Password length bounds, in characters (Unicode code points), as NIST SP
// 800-63B counts them: "😀😀" is two characters, not eight bytes.
const (
	minPasswordChars = 8
	maxPasswordChars = 1024
)

var errPasswordLength = errors.New("password must be 8 to 1024 characters")

// checkPasswordLength applies the same bounds to registration and login,
// so an over-long password is refused before any hashing.
func checkPasswordLength(pw string) error {
	// Cheap byte bound first: 4 bytes is the longest UTF-8 character.
	if len(pw) > 4*maxPasswordChars {
		return errPasswordLength
	}
	if n := utf8.RuneCountInString(pw); n < minPasswordChars || n > maxPasswordChars {
		return errPasswordLength
	}
	return nil
}

var errEmail = errors.New("invalid email address")

// emailProfile converts a domain to its ASCII (A-label) form with the
// IDNA lookup rules, which also lower-case and map it.
var emailProfile = idna.New(idna.MapForLookup(), idna.BidiRule(), idna.StrictDomainName(true), idna.VerifyDNSLength(true))

// normaliseEmail returns the one canonical form of an address, so one
// person cannot hold several accounts through Unicode or case tricks:
// NFC-normalised, the local part lower-cased, the domain lower-cased and
// IDNA-converted to ASCII ("Bücher.example" and "xn--bcher-kva.example" are
// the same). Control, format (zero-width, bidi) and space characters are
// refused, as are quoted local parts and comments.
func normaliseEmail(s string) (string, error) {
	s = strings.TrimSpace(s)
	if s == "" || len(s) > 254*4 || !utf8.ValidString(s) {
		return "", errEmail
	}
	for _, r := range s {
		if unicode.IsControl(r) || unicode.Is(unicode.Cf, r) || unicode.IsSpace(r) || r == utf8.RuneError ||
			unicode.Is(unicode.Co, r) || unicode.Is(unicode.Cs, r) || !unicode.IsPrint(r) {
			return "", errEmail
		}
	}
	s = norm.NFC.String(s)
	at := strings.LastIndexByte(s, '@')
	if at <= 0 || at == len(s)-1 {
		return "", errEmail
	}
	// Lower-casing can undo NFC ("İ" + U+0301 lowers to a sequence NFC
	// composes), so NFC again: the result is its own normal form.
	local, domain := norm.NFC.String(strings.ToLower(s[:at])), s[at+1:]
	if !validLocalPart(local) {
		return "", errEmail
	}
	ascii, err := emailProfile.ToASCII(domain)
	if err != nil || !strings.Contains(ascii, ".") || strings.HasSuffix(ascii, ".") {
		return "", errEmail
	}
	// A domain whose A-label the profile refuses back (mapping made it
	// break the bidi rule: "xℵb" maps to Latin and Hebrew in one label)
	// would give an address nobody could log in with as shown.
	if again, err := emailProfile.ToASCII(ascii); err != nil || again != ascii {
		return "", errEmail
	}
	out := local + "@" + ascii
	if len(out) > 254 {
		return "", errEmail
	}
	return out, nil
}

// validLocalPart accepts RFC 5322 dot-atoms, with non-ASCII letters and
// digits allowed (RFC 6531).
func validLocalPart(l string) bool {
	if l == "" || len(l) > 64 || l[0] == '.' || l[len(l)-1] == '.' || strings.Contains(l, "..") {
		return false
	}
	for _, r := range l {
		switch {
		case r >= 'a' && r <= 'z', r >= '0' && r <= '9', strings.ContainsRune("!#$%&'*+-/=?^_`{|}~.", r):
		case r > unicode.MaxASCII && (unicode.IsLetter(r) || unicode.IsDigit(r) || unicode.Is(unicode.Mn, r) || unicode.Is(unicode.Mc, r)):
		default:
			return false
		}
	}
	return true
}
