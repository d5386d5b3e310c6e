package main

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/levqor/levqor/alert"
	"github.com/levqor/levqor/sitemap"
)

// Exit codes of `sitemap submit`.
const (
	sitemapSubmitted   = 0 // accepted (200 or 202)
	sitemapRejected    = 1 // refused (400, 403, 422) or not configured: fix and rerun
	sitemapRateLimited = 2 // still 429 after backing off: try again later
)

// sitemapClaimKey is the claim `sitemap submit --if-due` takes in the
// claims table (alert_claims), beside the alerts' keys.
const sitemapClaimKey = "cron:sitemap-submit"

// cmdSitemap is `sitemap submit [--dry-run] [--if-due D]`: announce the
// public pages to search engines through IndexNow. Ready for cron.
func cmdSitemap(ctx context.Context, env *cliEnv, args []string) int {
	if len(args) == 0 || args[0] != "submit" {
		fmt.Fprintln(env.stderr, "usage: levqor-server sitemap submit [--dry-run] [--if-due D]")
		return 2
	}
	fs := newFlags(env, "sitemap submit")
	dry := fs.Bool("dry-run", false, "print what would be submitted; send nothing")
	ifDue := fs.Duration("if-due", 0, "submit only if no run (on any replica) submitted within this long, e.g. 20h: for cron on every replica")
	if code, ok := parse(fs, args[1:]); !ok {
		return code
	}
	if *ifDue < 0 {
		fmt.Fprintln(env.stderr, "sitemap submit: --if-due must be positive, like 20h")
		return 2
	}
	cfg := env.cfg
	if cfg.PublicURL == "" {
		fmt.Fprintln(env.stderr, "sitemap submit: LEVQOR_PUBLIC_URL is not set: search engines need the site's public address")
		return sitemapRejected
	}
	if cfg.IndexNowKey == "" {
		fmt.Fprintln(env.stderr, "sitemap submit: LEVQOR_INDEXNOW_KEY is not set (8-128 characters of a-z A-Z 0-9 -; the server serves it at /<key>.txt)")
		return sitemapRejected
	}
	client, err := sitemap.NewIndexNow(sitemap.IndexNowConfig{
		Key: cfg.IndexNowKey, KeyLocation: cfg.PublicURL + "/" + cfg.IndexNowKey + ".txt", Endpoint: cfg.IndexNowAPI,
	})
	if err != nil {
		fmt.Fprintln(env.stderr, "sitemap submit:", err)
		return sitemapRejected
	}
	var urls []string
	for _, u := range publicURLs(cfg.PublicURL) {
		urls = append(urls, u.Loc)
	}
	endpoint := cfg.IndexNowAPI
	if endpoint == "" {
		endpoint = sitemap.DefaultIndexNowEndpoint
	}
	if *dry {
		fmt.Fprintf(env.stdout, "would submit %d URLs to %s (key at %s/%s.txt):\n", len(urls), endpoint, cfg.PublicURL, cfg.IndexNowKey)
		for _, u := range urls {
			fmt.Fprintln(env.stdout, "  "+u)
		}
		return sitemapSubmitted
	}
	var claims *sqlClaims // with --if-due: this run's claim on the period
	if *ifDue > 0 {
		// Cron on every replica: one run per period submits, through a
		// claim in the server's database; a run that fails gives the
		// claim back, so the next one, wherever it runs, tries again.
		db, err := openServerDB(ctx, cfg)
		if err != nil {
			fmt.Fprintln(env.stderr, "sitemap submit:", err)
			return sitemapRejected
		}
		defer db.Close()
		claims = &sqlClaims{db: db, holder: replicaName(), now: time.Now}
		won, until, err := claims.Claim(ctx, sitemapClaimKey, *ifDue)
		if err != nil {
			fmt.Fprintln(env.stderr, "sitemap submit:", err)
			return sitemapRejected
		}
		if !won {
			fmt.Fprintf(env.stdout, "sitemap submit: not submitted: another run has this period, until %s\n", until.UTC().Format(time.RFC3339))
			return sitemapSubmitted
		}
	}
	res, err := client.Submit(ctx, urls)
	if err != nil && claims != nil {
		_ = claims.Release(context.WithoutCancel(ctx), sitemapClaimKey) // the next run, wherever it runs, tries again
	}
	switch {
	case err == nil:
		fmt.Fprintf(env.stdout, "submitted %d URLs to %s\n", res.Submitted, endpoint)
		return sitemapSubmitted
	case errors.Is(err, sitemap.ErrRateLimited):
		fmt.Fprintf(env.stderr, "sitemap submit: %v (after %d requests); try again later\n", err, res.Requests)
		return sitemapRateLimited
	default:
		fmt.Fprintln(env.stderr, "sitemap submit:", err)
		// Rejected again on every run until someone fixes the key or
		// its location: say so where the team looks.
		opsAlert(ctx, env, alert.Alert{Severity: alert.SeverityWarning, Title: "Sitemap submission rejected", Key: "sitemap-rejected", Message: err.Error()})
		return sitemapRejected
	}
}
