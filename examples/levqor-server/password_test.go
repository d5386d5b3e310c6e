package main

import "testing"

// TestPasswordNormalisation: a password matches however its characters
// were typed (composed or decomposed accents, full-width letters), and a
// hash made before passwords were normalised still matches the password
// as it was typed then.
func TestPasswordNormalisation(t *testing.T) {
	composed, decomposed := "pass\u00e9word", "passe\u0301word"
	legacy := hashArgon2(decomposed) // as the server hashed before: as typed
	for _, tc := range []struct {
		name, hash, pw string
		want           bool
	}{
		{"composed, typed decomposed", hashPassword(composed), decomposed, true},
		{"decomposed, typed composed", hashPassword(decomposed), composed, true},
		{"ASCII, typed full-width", hashPassword("password1"), "\uff50\uff41\uff53\uff53\uff57\uff4f\uff52\uff44\uff11", true},
		{"legacy hash, typed as then", legacy, decomposed, true},
		{"legacy hash, another password", legacy, "passeword", false},
		{"another password", hashPassword(composed), "password", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := checkPassword(tc.hash, tc.pw); got != tc.want {
				t.Fatalf("checkPassword = %v, want %v", got, tc.want)
			}
		})
	}
}
