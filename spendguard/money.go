package spendguard

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
)

// Money is an amount in a currency's minor units (cents for USD), never
// a float.
type Money struct {
	Amount   int64  `json:"amount"`
	Currency string `json:"currency"` // ISO 4217, upper case
}

// zeroDecimal lists currencies without minor units (Stripe's list).
var zeroDecimal = map[string]bool{
	"BIF": true, "CLP": true, "DJF": true, "GNF": true, "JPY": true, "KMF": true, "KRW": true, "MGA": true,
	"PYG": true, "RWF": true, "UGX": true, "VND": true, "VUV": true, "XAF": true, "XOF": true, "XPF": true,
}

// Decimals is how many minor-unit digits currency has (2 or 0).
func Decimals(currency string) int {
	if zeroDecimal[strings.ToUpper(currency)] {
		return 0
	}
	return 2
}

// ErrBadAmount reports an unparseable amount.
var ErrBadAmount = errors.New("spendguard: invalid amount")

// ParseMoney parses a decimal amount in major units ("50", "49.99") without
// going through float64.
func ParseMoney(s, currency string) (Money, error) {
	cur := strings.ToUpper(strings.TrimSpace(currency))
	if len(cur) != 3 {
		return Money{}, fmt.Errorf("%w: currency %q is not a 3-letter code", ErrBadAmount, currency)
	}
	s = strings.TrimSpace(s)
	neg := strings.HasPrefix(s, "-")
	s = strings.TrimPrefix(s, "-")
	whole, frac, _ := strings.Cut(s, ".")
	dec := Decimals(cur)
	if whole == "" || len(frac) > dec || strings.ContainsAny(whole+frac, "+-") {
		return Money{}, fmt.Errorf("%w: %q (at most %d decimals for %s)", ErrBadAmount, s, dec, cur)
	}
	frac += strings.Repeat("0", dec-len(frac))
	n, err := strconv.ParseInt(whole+frac, 10, 64)
	if err != nil {
		return Money{}, fmt.Errorf("%w: %q", ErrBadAmount, s)
	}
	if neg {
		n = -n
	}
	return Money{Amount: n, Currency: cur}, nil
}

// String formats m as "49.99 USD" ("$49.99" for USD).
func (m Money) String() string {
	dec := Decimals(m.Currency)
	a := m.Amount
	sign := ""
	if a < 0 {
		sign, a = "-", -a
	}
	var num string
	if dec == 0 {
		num = strconv.FormatInt(a, 10)
	} else {
		num = fmt.Sprintf("%d.%02d", a/100, a%100)
	}
	if m.Currency == "USD" {
		return sign + "$" + num
	}
	return sign + num + " " + m.Currency
}

// Percent is m as a percentage of of (0 when of is zero).
func (m Money) Percent(of Money) float64 {
	if of.Amount == 0 {
		return 0
	}
	return 100 * float64(m.Amount) / float64(of.Amount)
}
