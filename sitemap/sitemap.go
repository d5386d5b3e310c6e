package sitemap

import (
	"bufio"
	"errors"
	"fmt"
	"html/template"
	"io"
	"net/url"
	"time"
)

// MaxURLs is the most URLs one sitemap may list (sitemaps.org).
const MaxURLs = 50_000

// ErrInvalidURL is returned for a URL a sitemap or IndexNow cannot carry.
var ErrInvalidURL = errors.New("sitemap: invalid URL")

// URL is one page of a sitemap.
type URL struct {
	// Loc is the page's absolute http or https URL.
	Loc string
	// LastMod is when the page last changed; zero leaves <lastmod> out.
	LastMod time.Time
}

// Write writes urls as a sitemap.xml document. Nothing is written when a
// URL is invalid or there are more than MaxURLs.
func Write(w io.Writer, urls []URL) error {
	if len(urls) > MaxURLs {
		return fmt.Errorf("sitemap: %d URLs, at most %d per sitemap", len(urls), MaxURLs)
	}
	for _, u := range urls {
		if _, err := checkURL(u.Loc); err != nil {
			return err
		}
	}
	bw := bufio.NewWriter(w)
	bw.WriteString(`<?xml version="1.0" encoding="UTF-8"?>` + "\n" + `<urlset xmlns="http://www.sitemaps.org/schemas/sitemap/0.9">` + "\n")
	for _, u := range urls {
		bw.WriteString("  <url><loc>")
		template.HTMLEscape(bw, []byte(u.Loc))
		bw.WriteString("</loc>")
		if !u.LastMod.IsZero() {
			bw.WriteString("<lastmod>" + u.LastMod.UTC().Format("2006-01-02") + "</lastmod>")
		}
		bw.WriteString("</url>\n")
	}
	bw.WriteString("</urlset>\n")
	return bw.Flush()
}

// checkURL parses an absolute http(s) URL with a host.
func checkURL(s string) (*url.URL, error) {
	u, err := url.Parse(s)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.User != nil || len(s) > 2048 {
		return nil, fmt.Errorf("%w: %q (want an absolute http(s) URL of at most 2048 bytes)", ErrInvalidURL, truncate(s, 100))
	}
	return u, nil
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "…"
}
