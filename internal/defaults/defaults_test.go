package defaults_test

import (
	"testing"
	"time"

	"github.com/levqor/levqor/internal/defaults"
)

func TestSet(t *testing.T) {
	a, b := 0, 7
	defaults.Set(&a, 5)
	defaults.Set(&b, 5)
	d := -time.Second
	defaults.Set(&d, time.Minute)
	if a != 5 || b != 7 || d != -time.Second {
		t.Fatal(a, b, d)
	}
}
