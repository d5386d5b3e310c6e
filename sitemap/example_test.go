package sitemap_test

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"time"

	"github.com/levqor/levqor/sitemap"
)

func ExampleWrite() {
	_ = sitemap.Write(os.Stdout, []sitemap.URL{
		{Loc: "https://levqor.example/", LastMod: time.Date(2026, 11, 26, 0, 0, 0, 0, time.UTC)},
	})
	// Output:
	// <?xml version="1.0" encoding="UTF-8"?>
	// <urlset xmlns="http://www.sitemaps.org/schemas/sitemap/0.9">
	//   <url><loc>https://levqor.example/</loc><lastmod>2026-11-26</lastmod></url>
	// </urlset>
}

func ExampleValidKey() {
	println := func(err error) { os.Stdout.WriteString(errString(err) + "\n") }
	println(sitemap.ValidKey("9f1c2e7a-levqor"))
	println(sitemap.ValidKey("short"))
	// Output:
	// ok
	// sitemap: invalid IndexNow key: 5 characters, want 8 to 128
}

func errString(err error) string {
	if err == nil {
		return "ok"
	}
	return err.Error()
}

func ExampleIndexNow_Submit() {
	// An IndexNow endpoint that accepts everything (a stand-in for
	// api.indexnow.org).
	engine := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(http.StatusAccepted)
	}))
	defer engine.Close()

	c, err := sitemap.NewIndexNow(sitemap.IndexNowConfig{
		Key:         "9f1c2e7a-levqor",
		KeyLocation: "https://levqor.example/9f1c2e7a-levqor.txt",
		Endpoint:    engine.URL,
	})
	if err != nil {
		fmt.Println(err)
		return
	}
	res, err := c.Submit(context.Background(), []string{"https://levqor.example/", "https://levqor.example/pricing"})
	fmt.Println(res.Submitted, res.Requests, err)
	_, err = c.Submit(context.Background(), []string{"https://elsewhere.example/"})
	fmt.Println(errors.Is(err, sitemap.ErrInvalidURL))
	// Output:
	// 2 1 <nil>
	// true
}
