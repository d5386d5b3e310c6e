package sitemap_test

import (
	"context"
	"net/http"
	"time"

	"github.com/levqor/levqor/sitemap"
)

// Example_readme is the sitemap section of the README, compiled.
func Example_readme() {
	ctx, updated := context.Background(), time.Now()
	var w http.ResponseWriter
	key := "9f1c2e7a-levqor"
	if w == nil {
		return // compiled, not run
	}
	// README:begin
	_ = sitemap.Write(w, []sitemap.URL{{Loc: "https://levqor.example/", LastMod: updated}}) // in the /sitemap.xml handler

	// Serve key as text/plain at /<key>.txt, then announce changed pages:
	c, _ := sitemap.NewIndexNow(sitemap.IndexNowConfig{Key: key, KeyLocation: "https://levqor.example/" + key + ".txt"})
	res, err := c.Submit(ctx, []string{"https://levqor.example/"}) // errors.Is(err, sitemap.ErrRejected / ErrRateLimited)
	// README:end
	_, _ = res, err
}
