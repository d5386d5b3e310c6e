package money_test

import (
	"errors"
	"fmt"
	"math"
	"testing"

	"github.com/levqor/levqor/money"
)

func TestString(t *testing.T) {
	for _, tc := range []struct {
		m    money.Money
		want string
	}{
		{money.New(4999, "USD"), "$49.99"},
		{money.New(-300, "USD"), "-$3.00"},
		{money.New(5, "USD"), "$0.05"},
		{money.New(6000, "JPY"), "6000 JPY"},
		{money.New(1500, "KWD"), "1.500 KWD"},
		{money.New(7, "KWD"), "0.007 KWD"},
		{money.New(-1230, "EUR"), "-12.30 EUR"},
		{money.New(12345, "CLF"), "1.2345 CLF"},
		{money.New(math.MinInt64, "USD"), "-$92233720368547758.08"},
		{money.New(math.MaxInt64, "EUR"), "92233720368547758.07 EUR"},
	} {
		if got := tc.m.String(); got != tc.want {
			t.Errorf("%+v: %q, want %q", tc.m, got, tc.want)
		}
	}
}

func TestParse(t *testing.T) {
	for _, tc := range []struct {
		in, cur string
		want    int64
	}{
		{"50", "usd", 5000}, {"49.99", "USD", 4999}, {"49.9", "USD", 4990}, {"-3", "USD", -300},
		{"6000", "JPY", 6000}, {"1.5", "KWD", 1500}, {" 0.001 ", "KWD", 1},
	} {
		m, err := money.Parse(tc.in, tc.cur)
		if err != nil || m.Amount != tc.want {
			t.Errorf("Parse(%q, %q) = %+v, %v; want %d", tc.in, tc.cur, m, err, tc.want)
		}
	}
	for _, bad := range [][2]string{{"1.5", "JPY"}, {"1.234", "USD"}, {"abc", "USD"}, {"", "USD"}, {"1.", "USD"},
		{"+1", "USD"}, {"1e3", "USD"}, {"--1", "USD"}, {"1", "US"}, {"1", "U$D"}, {"99999999999999999999", "USD"}} {
		if m, err := money.Parse(bad[0], bad[1]); err == nil {
			t.Errorf("Parse(%q, %q) = %+v, want an error", bad[0], bad[1], m)
		}
	}
}

func TestArithmeticIsChecked(t *testing.T) {
	_, err := money.Sum(money.New(math.MaxInt64, "USD"), money.New(10000, "USD"))
	if !errors.Is(err, money.ErrOverflow) {
		t.Fatalf("MaxInt64 + 10000: %v", err)
	}
	_, err = money.Sum(money.New(math.MinInt64, "USD"), money.New(-1, "USD"))
	if !errors.Is(err, money.ErrOverflow) {
		t.Fatalf("MinInt64 - 1: %v", err)
	}
	if d, err := money.New(5, "USD").Sub(money.New(7, "USD")); err != nil || d.Amount != -2 {
		t.Fatalf("Sub: %v %v", d, err)
	}
	if _, err := money.New(0, "USD").Sub(money.New(math.MinInt64, "USD")); !errors.Is(err, money.ErrOverflow) {
		t.Fatalf("0 - MinInt64: %v", err)
	}
	if _, err := money.Sum(money.New(1, "USD"), money.New(1, "EUR")); !errors.Is(err, money.ErrCurrencyMismatch) {
		t.Fatalf("mixed: %v", err)
	}
	if s, err := money.Sum(money.New(1, "USD"), money.New(-3, "USD"), money.New(7, "USD")); err != nil || s.Amount != 5 {
		t.Fatalf("%v %v", s, err)
	}
	for _, v := range []float64{math.NaN(), math.Inf(1), math.Inf(-1), 1e300, -1e300, 9.3e16} {
		if m, err := money.FromMajor(v, "USD"); err == nil {
			t.Errorf("FromMajor(%v) = %+v", v, m)
		}
	}
	if m, err := money.FromMajor(12.345, "USD"); err != nil || m.Amount != 1235 {
		t.Fatalf("FromMajor(12.345) = %+v %v", m, err)
	}
	if m, err := money.FromMajor(6000, "JPY"); err != nil || m.Amount != 6000 {
		t.Fatalf("JPY %+v %v", m, err)
	}
	for _, tc := range []struct{ a, num, den, want int64 }{
		{10000, 2000, 10000, 2000}, {333, 2000, 10000, 67}, {-333, 2000, 10000, -67}, {5, 1, 2, 3}, {-5, 1, 2, -3},
	} {
		if m, err := money.New(tc.a, "USD").MulDiv(tc.num, tc.den); err != nil || m.Amount != tc.want {
			t.Errorf("%d×%d/%d = %+v %v, want %d", tc.a, tc.num, tc.den, m, err, tc.want)
		}
	}
	if _, err := money.New(math.MaxInt64, "USD").MulDiv(3, 2); !errors.Is(err, money.ErrOverflow) {
		t.Fatalf("MulDiv overflow: %v", err)
	}
}

// FuzzParseString: whatever Parse accepts, String prints back to the same
// amount, and nothing panics.
func FuzzParseString(f *testing.F) {
	for _, s := range []string{"0", "49.99", "-3", "6000", "1.500", "92233720368547758.07", "-92233720368547758.08"} {
		f.Add(s, "USD")
		f.Add(s, "JPY")
		f.Add(s, "KWD")
	}
	f.Fuzz(func(t *testing.T, s, cur string) {
		m, err := money.Parse(s, cur)
		if err != nil {
			return
		}
		back, err := money.Parse(m.Number(), m.Currency)
		if err != nil || back != m {
			t.Fatalf("Parse(%q,%q) = %+v; Number %q parses to %+v, %v", s, cur, m, m.Number(), back, err)
		}
		_ = m.String()
	})
}

func ExampleMoney_String() {
	fmt.Println(money.New(600000, "USD"), money.New(6000, "JPY"), money.New(1500, "KWD"))
	// Output: $6000.00 6000 JPY 1.500 KWD
}
