package main_test

import (
	"errors"
	"fmt"
	"net"
	"strings"
	"testing"
	"time"
)

// largeInvoice is an invoice as Stripe may send it at its documented
// limits: 50 metadata values of 500 characters on the invoice and on each
// of its lines.
func largeInvoice(id, email string, amount int64, customer string, lines int) map[string]any {
	inv := invoice(id, email, amount, customer, "")
	metadata := func(prefix string) map[string]string {
		m := map[string]string{}
		for i := range 50 {
			m[fmt.Sprintf("%s_key_%02d", prefix, i)] = strings.Repeat(string(rune('a'+i%26)), 500)
		}
		return m
	}
	inv["metadata"] = metadata("invoice")
	var data []any
	for i := range lines {
		data = append(data, map[string]any{"id": fmt.Sprintf("il_%d", i), "object": "line_item", "amount": amount / int64(lines), "currency": "usd", "metadata": metadata(fmt.Sprintf("line%d", i))})
	}
	inv["lines"] = map[string]any{"object": "list", "has_more": false, "data": data}
	return inv
}

// TestLargeStripeEvents: an invoice.paid of over 64 KiB, within what
// Stripe allows (metadata on the invoice and its lines), records its
// commission; before, every such event was refused with 413, and Stripe
// gave up on it after three days of retries. Bodies over 1 MiB are
// refused, and bodies over 64 KiB are read a few at a time: with every
// slot held by a client trickling a large body, another large event gets
// 503 (Stripe delivers it again), a small one is still handled, and the
// large one is handled once the slots are free.
func TestLargeStripeEvents(t *testing.T) {
	fs := newFakeStripe(t)
	s := start(t, "STRIPE_SECRET_KEY=sk_test_partner", "LEVQOR_STRIPE_API="+fs.URL, "STRIPE_WEBHOOK_SECRET="+webhookSecret)
	expect(t, s.do("POST", "/api/auth/register", "", creds("partner@example.com", "partner password")), 201, "register partner")
	ptok, _ := login(t, s, "partner@example.com", "partner password")
	r := s.do("POST", "/api/partners", ptok, "")
	expect(t, r, 201, "POST /api/partners")
	code := r.json(t)["referral_code"].(string)
	expect(t, s.do("POST", "/api/auth/register", "", fmt.Sprintf(`{"email":"buyer@example.com","password":"buyer password","ref":%q}`, code)), 201, "register buyer")

	big := stripeEvent("evt_big", "invoice.paid", largeInvoice("in_big", "buyer@example.com", 30000, "cus_buyer", 10))
	if len(big) < 200<<10 {
		t.Fatalf("the large event is only %d bytes", len(big))
	}
	if st, body := signedEvent(t, s, big); st != 200 {
		t.Fatalf("a %d KiB invoice.paid: %d %s", len(big)>>10, st, body)
	}
	if got := unpaidUSD(t, partnerMe(t, s, ptok)); got != 6000 {
		t.Fatalf("after a large invoice.paid the partner is owed %v cents; want 6000", got)
	}

	huge := stripeEvent("evt_huge", "invoice.paid", map[string]any{"id": "in_huge", "pad": strings.Repeat("x", 1100<<10)})
	if st, _ := signedEvent(t, s, huge); st != 413 {
		t.Fatalf("a 1.1 MiB event: %d, want 413", st)
	}

	// Four clients each send 100 KiB of a 300 KiB body, then stall. An
	// unsigned large probe tells when they hold every slot: 400 (its body
	// was read) while one is free, 503 once none is. A stalled request
	// that arrived while the probe held a slot was answered 503 itself:
	// it is sent again.
	addr := strings.TrimPrefix(s.url, "http://")
	stall := func() net.Conn {
		c, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = c.Close() })
		fmt.Fprintf(c, "POST /webhooks/stripe HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nStripe-Signature: t=1,v1=00\r\nContent-Length: %d\r\n\r\n%s", 300<<10, strings.Repeat(" ", 100<<10))
		return c
	}
	var stalled []net.Conn
	for range 4 {
		stalled = append(stalled, stall())
	}
	probe := strings.Repeat(" ", 100<<10) + "{}"
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		st, body := postEvent(t, s, probe, "t=1,v1=00")
		if st == 503 {
			break
		}
		if st != 400 || time.Now().After(deadline) {
			t.Fatalf("an unsigned large probe: %d %s; want 400, then 503 once the stalled bodies hold every slot", st, body)
		}
		for i, c := range stalled {
			_ = c.SetReadDeadline(time.Now().Add(10 * time.Millisecond))
			n, err := c.Read(make([]byte, 1))
			var ne net.Error
			if n > 0 || err != nil && !(errors.As(err, &ne) && ne.Timeout()) { // answered or cut: it holds no slot
				_ = c.Close()
				stalled[i] = stall()
			}
		}
	}
	other := stripeEvent("evt_big_2", "invoice.paid", largeInvoice("in_big_2", "buyer@example.com", 10000, "cus_buyer", 10))
	if st, body := signedEvent(t, s, other); st != 503 {
		t.Fatalf("a large event with every slot held: %d %s; want 503", st, body)
	}
	small := stripeEvent("evt_small", "customer.created", map[string]any{"id": "cus_small"})
	if st, body := signedEvent(t, s, small); st != 200 {
		t.Fatalf("a small event with every large-body slot held: %d %s", st, body)
	}
	for _, c := range stalled {
		_ = c.Close()
	}
	for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		st, body := signedEvent(t, s, other)
		if st == 200 {
			break
		}
		if st != 503 || time.Now().After(deadline) {
			t.Fatalf("the large event once the slots were free: %d %s", st, body)
		}
	}
	if got := unpaidUSD(t, partnerMe(t, s, ptok)); got != 8000 {
		t.Fatalf("after the second large invoice the partner is owed %v cents; want 8000", got)
	}
}
