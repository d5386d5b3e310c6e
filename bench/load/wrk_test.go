package main

import (
	"testing"
	"time"
)

// TestParseWrk reads a report as wrk 4.1 prints it with --latency.
func TestParseWrk(t *testing.T) {
	out := `Running 5s test @ http://127.0.0.1:40000/api/me
  1 threads and 64 connections
  Thread Stats   Avg      Stdev     Max   +/- Stdev
    Latency     1.20ms    1.02ms  20.31ms   89.12%
    Req/Sec    46.30k     2.10k   50.12k    70.00%
  Latency Distribution
     50%  1.05ms
     75%    1.40ms
     90%    2.10ms
     99%    6.68ms
  230412 requests in 5.00s, 52.10MB read
  Socket errors: connect 0, read 2, write 0, timeout 1
  Non-2xx or 3xx responses: 7
Requests/sec:  46082.40
Transfer/sec:     10.42MB
`
	var r result
	if err := parseWrk([]byte(out), &r); err != nil {
		t.Fatal(err)
	}
	if r.reqs != 230412 || r.rps != 46082.40 || r.p50 != 1050*time.Microsecond || r.p99 != 6680*time.Microsecond || r.errs != 10 {
		t.Fatalf("got %+v", r)
	}
	for _, bad := range []string{"", "Requests/sec: 12\n", "  99%  5.0parsecs\n  1 requests in 1s\nRequests/sec: 1\n"} {
		if err := parseWrk([]byte(bad), &result{}); err == nil {
			t.Errorf("%q: no error", bad)
		}
	}
}
