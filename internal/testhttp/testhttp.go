// Package testhttp sends one HTTP request for a test and reads the answer.
package testhttp

import (
	"io"
	"net/http"
	"strings"
	"testing"
)

// Do sends method url with body (none when "") and header, and returns the
// response with its body read and closed. A transport error fails the test.
func Do(t testing.TB, method, url, body string, header http.Header) (*http.Response, string) {
	t.Helper()
	var r io.Reader
	if body != "" {
		r = strings.NewReader(body)
	}
	req, err := http.NewRequest(method, url, r)
	if err != nil {
		t.Fatal(err)
	}
	for k, vs := range header {
		req.Header[k] = vs
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	b, err := io.ReadAll(res.Body)
	if err != nil {
		t.Fatal(err)
	}
	return res, string(b)
}
