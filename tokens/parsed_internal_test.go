package tokens

import (
	"bytes"
	"encoding/json"
	"slices"
	"testing"
)

// audienceByJSON is the reference: what encoding/json makes of b as a
// string or an array of strings.
func audienceByJSON(b []byte) ([]string, bool) {
	var s string
	if err := json.Unmarshal(b, &s); err == nil {
		return []string{s}, true
	}
	var list []string
	if err := json.Unmarshal(b, &list); err == nil && list != nil {
		return list, true
	}
	return nil, false
}

// FuzzAudience: the aud decoder's fast paths agree with encoding/json on
// every input encoding/json accepts as a string or a list of strings.
func FuzzAudience(f *testing.F) {
	for _, s := range []string{`"levqor-api"`, `["levqor-api"]`, `["a","b"]`, `[]`, `["a\"b"]`, `["a",1]`, `["a",]`, `[,"a"]`,
		`[ "a" ]`, `["a""b"]`, `["\u00e9"]`, `["é"]`, `"`, `[`, `["a","b","c"]`, `["a",""]`, `[""]`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		// encoding/json hands a decoder the literal alone: valid, without
		// surrounding space; null is the absent claim.
		b = bytes.TrimSpace(b)
		if !json.Valid(b) || string(b) == "null" {
			return
		}
		want, ok := audienceByJSON(b)
		var a audience
		err := a.UnmarshalJSON(b)
		if ok != (err == nil) {
			t.Fatalf("%q: err %v, encoding/json ok=%v", b, err, ok)
		}
		if ok && !slices.Equal([]string(a), want) {
			t.Fatalf("%q: got %q, want %q", b, a, want)
		}
	})
}
