// Package money is the one money type of Levqor: an integer amount in a
// currency's minor units, with the ISO 4217 number of decimals, checked
// arithmetic and exact parsing and formatting. payout and spendguard both
// use it, so an amount prints the same everywhere.
//
//	m, err := money.Parse("6000", "JPY") // ¥6000: JPY has no minor unit
//	fmt.Println(m)                       // 6000 JPY
//	sum, err := money.Sum(a, b, c)       // an error on overflow or mixed currencies
//
// # Decimals
//
// Decimals follows ISO 4217 (JPY 0, USD 2, KWD 3, CLF 4). A currency code
// it does not know is taken to have 2 decimals (most currencies do);
// Known tells which codes are in its table.
package money

import (
	"errors"
	"fmt"
	"math"
	"math/big"
	"strconv"
	"strings"
)

// Money is an amount in a currency's minor units (cents for USD, yen for
// JPY, fils for KWD), never a float.
type Money struct {
	Amount   int64  `json:"amount"`
	Currency string `json:"currency"` // ISO 4217, upper case
}

// Errors.
var (
	// ErrInvalid reports an amount or currency that cannot be parsed or
	// converted (not a number, too many decimals, not finite).
	ErrInvalid = errors.New("money: invalid amount")
	// ErrOverflow reports a result outside int64 minor units.
	ErrOverflow = errors.New("money: amount out of range")
	// ErrCurrencyMismatch reports arithmetic on two currencies.
	ErrCurrencyMismatch = errors.New("money: different currencies")
)

// decimals lists ISO 4217 currencies whose minor unit is not 2 digits.
var decimals = map[string]int{
	// 0 decimals
	"BIF": 0, "CLP": 0, "DJF": 0, "GNF": 0, "ISK": 0, "JPY": 0, "KMF": 0, "KRW": 0, "PYG": 0,
	"RWF": 0, "UGX": 0, "UYI": 0, "VND": 0, "VUV": 0, "XAF": 0, "XOF": 0, "XPF": 0,
	// 3 decimals
	"BHD": 3, "IQD": 3, "JOD": 3, "KWD": 3, "LYD": 3, "OMR": 3, "TND": 3,
	// 4 decimals
	"CLF": 4, "UYW": 4,
}

// twoDecimal lists common ISO 4217 currencies with 2 decimals, for Known.
var twoDecimal = map[string]bool{
	"AED": true, "AUD": true, "BRL": true, "CAD": true, "CHF": true, "CNY": true, "CZK": true, "DKK": true,
	"EUR": true, "GBP": true, "HKD": true, "HUF": true, "IDR": true, "ILS": true, "INR": true, "MXN": true,
	"MYR": true, "NOK": true, "NZD": true, "PHP": true, "PLN": true, "RON": true, "SEK": true, "SGD": true,
	"THB": true, "TRY": true, "TWD": true, "USD": true, "ZAR": true,
}

// Decimals is how many minor-unit digits currency has (ISO 4217; 2 for a
// code not in the table).
func Decimals(currency string) int {
	if d, ok := decimals[strings.ToUpper(currency)]; ok {
		return d
	}
	return 2
}

// Known reports whether currency is in Decimals' table rather than
// assumed to have 2 decimals.
func Known(currency string) bool {
	c := strings.ToUpper(currency)
	_, ok := decimals[c]
	return ok || twoDecimal[c]
}

// ValidCurrency reports whether s is a 3-letter upper-case code.
func ValidCurrency(s string) bool {
	if len(s) != 3 {
		return false
	}
	for i := range 3 {
		if s[i] < 'A' || s[i] > 'Z' {
			return false
		}
	}
	return true
}

// New returns amount minor units of currency (upper-cased).
func New(amount int64, currency string) Money {
	return Money{Amount: amount, Currency: strings.ToUpper(currency)}
}

// Parse reads a decimal amount in major units ("50", "49.99", "-3",
// "6000" for JPY) exactly, without going through float64.
func Parse(s, currency string) (Money, error) {
	cur := strings.ToUpper(strings.TrimSpace(currency))
	if !ValidCurrency(cur) {
		return Money{}, fmt.Errorf("%w: currency %q is not a 3-letter code", ErrInvalid, currency)
	}
	s = strings.TrimSpace(s)
	digits := strings.TrimPrefix(s, "-")
	whole, frac, hasDot := strings.Cut(digits, ".")
	dec := Decimals(cur)
	if whole == "" || (hasDot && frac == "") || len(frac) > dec || !allDigits(whole) || !allDigits(frac) {
		return Money{}, fmt.Errorf("%w: %q (at most %d decimals for %s)", ErrInvalid, s, dec, cur)
	}
	frac += strings.Repeat("0", dec-len(frac))
	sign := ""
	if strings.HasPrefix(s, "-") {
		sign = "-"
	}
	n, err := strconv.ParseInt(sign+whole+frac, 10, 64)
	if err != nil {
		return Money{}, fmt.Errorf("%w: %q", ErrOverflow, s)
	}
	return Money{Amount: n, Currency: cur}, nil
}

func allDigits(s string) bool {
	for i := range len(s) {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}

// FromMajor converts a float amount in major units (as some APIs report
// costs, e.g. 12.345 dollars) to minor units, rounding half away from
// zero. NaN, ±Inf and amounts outside int64 minor units are errors, never
// a wrapped or clamped number.
func FromMajor(v float64, currency string) (Money, error) {
	cur := strings.ToUpper(currency)
	if !ValidCurrency(cur) {
		return Money{}, fmt.Errorf("%w: currency %q is not a 3-letter code", ErrInvalid, currency)
	}
	if math.IsNaN(v) || math.IsInf(v, 0) {
		return Money{}, fmt.Errorf("%w: %v", ErrInvalid, v)
	}
	minor := math.Round(v * math.Pow10(Decimals(cur)))
	// float64(MaxInt64) rounds up to 2^63, so >= excludes it.
	if minor >= math.MaxInt64 || minor < math.MinInt64 {
		return Money{}, fmt.Errorf("%w: %v %s", ErrOverflow, v, cur)
	}
	return Money{Amount: int64(minor), Currency: cur}, nil
}

// Add returns m + o, or an error when the currencies differ or the sum
// overflows.
func (m Money) Add(o Money) (Money, error) {
	if m.Currency != o.Currency {
		return Money{}, fmt.Errorf("%w: %s and %s", ErrCurrencyMismatch, m.Currency, o.Currency)
	}
	s := m.Amount + o.Amount
	if (s > m.Amount) != (o.Amount > 0) {
		return Money{}, fmt.Errorf("%w: %s + %s", ErrOverflow, m, o)
	}
	return Money{Amount: s, Currency: m.Currency}, nil
}

// Sub returns m - o, checked like Add.
func (m Money) Sub(o Money) (Money, error) {
	if o.Amount == math.MinInt64 {
		return Money{}, fmt.Errorf("%w: %s - %s", ErrOverflow, m, o)
	}
	return m.Add(Money{Amount: -o.Amount, Currency: o.Currency})
}

// Sum adds amounts of one currency, checking every step. The sum of
// nothing is an error (no currency).
func Sum(ms ...Money) (Money, error) {
	if len(ms) == 0 {
		return Money{}, fmt.Errorf("%w: nothing to sum", ErrInvalid)
	}
	total := ms[0]
	for _, m := range ms[1:] {
		var err error
		if total, err = total.Add(m); err != nil {
			return Money{}, err
		}
	}
	return total, nil
}

// MulDiv returns m × num / den, rounded half away from zero, checking for
// overflow (for shares such as basis points: MulDiv(500, 10000)).
func (m Money) MulDiv(num, den int64) (Money, error) {
	if den == 0 {
		return Money{}, fmt.Errorf("%w: division by zero", ErrInvalid)
	}
	p := new(big.Int).Mul(big.NewInt(m.Amount), big.NewInt(num))
	d := big.NewInt(den)
	q, r := new(big.Int).QuoRem(p, d, new(big.Int))
	// Round half away from zero: |2r| >= |d|.
	r2 := new(big.Int).Abs(new(big.Int).Mul(r, big.NewInt(2)))
	if r2.Cmp(new(big.Int).Abs(d)) >= 0 {
		if (p.Sign() < 0) != (d.Sign() < 0) {
			q.Sub(q, big.NewInt(1))
		} else {
			q.Add(q, big.NewInt(1))
		}
	}
	if !q.IsInt64() {
		return Money{}, fmt.Errorf("%w: %s × %d / %d", ErrOverflow, m, num, den)
	}
	return Money{Amount: q.Int64(), Currency: m.Currency}, nil
}

// String formats m with its currency's decimals: "$49.99" and "-$3.00"
// for USD, "6000 JPY", "1.500 KWD", "-12.30 EUR".
func (m Money) String() string {
	n := m.Number()
	if m.Currency == "USD" {
		if neg, ok := strings.CutPrefix(n, "-"); ok {
			return "-$" + neg
		}
		return "$" + n
	}
	return n + " " + m.Currency
}

// Number is the amount in major units without the currency: "-49.99",
// "6000", "1.500".
func (m Money) Number() string {
	dec := Decimals(m.Currency)
	neg := m.Amount < 0
	// Work on the magnitude as uint64 so MinInt64 formats correctly.
	u := uint64(m.Amount)
	if neg {
		u = -u
	}
	digits := strconv.FormatUint(u, 10)
	if dec > 0 {
		if len(digits) <= dec {
			digits = strings.Repeat("0", dec-len(digits)+1) + digits
		}
		digits = digits[:len(digits)-dec] + "." + digits[len(digits)-dec:]
	}
	if neg {
		return "-" + digits
	}
	return digits
}

// Percent is m as a percentage of of (0 when of is zero).
func (m Money) Percent(of Money) float64 {
	if of.Amount == 0 {
		return 0
	}
	return 100 * float64(m.Amount) / float64(of.Amount)
}
