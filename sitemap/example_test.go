package sitemap_test

import (
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
