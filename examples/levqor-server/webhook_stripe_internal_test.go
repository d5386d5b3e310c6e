package main

import (
	"bufio"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
)

// TestWebhookLargeBodyDeadline: a client that sends more than
// webhookBodyFree and then trickles (or stops) loses its large-body slot
// after webhookReadTime, instead of holding it for the server's whole read
// timeout: four such clients held every slot for 30 s at a time.
func TestWebhookLargeBodyDeadline(t *testing.T) {
	a := &app{cfg: config{StripeWebhookSecrets: []string{"whsec_deadline_test"}},
		webhookSlots: make(chan struct{}, 1), webhookReadTime: 300 * time.Millisecond}
	srv := httptest.NewServer(http.HandlerFunc(a.stripeWebhook))
	defer srv.Close()
	c, err := net.Dial("tcp", strings.TrimPrefix(srv.URL, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	fmt.Fprintf(c, "POST / HTTP/1.1\r\nHost: x\r\nStripe-Signature: t=1,v1=00\r\nContent-Length: %d\r\n\r\n%s", 300<<10, strings.Repeat(" ", 100<<10))
	t0 := time.Now()
	_ = c.SetReadDeadline(time.Now().Add(10 * time.Second))
	res, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil {
		t.Fatalf("no answer to a stalled large body: %v", err)
	}
	res.Body.Close()
	if d := time.Since(t0); res.StatusCode != http.StatusBadRequest || d > 5*time.Second {
		t.Fatalf("a stalled large body: %d after %v; want 400 after about %v", res.StatusCode, d, a.webhookReadTime)
	}
	if n := len(a.webhookSlots); n != 0 {
		t.Fatalf("%d slots still held after the stalled body was refused", n)
	}
}
