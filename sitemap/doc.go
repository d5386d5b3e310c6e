// Package sitemap builds sitemap.xml documents and tells search engines
// about new or changed pages through IndexNow.
//
// # Quick start
//
//	urls := []sitemap.URL{{Loc: "https://levqor.example/", LastMod: updated}}
//	_ = sitemap.Write(w, urls) // in an http.Handler for /sitemap.xml
//
//	c, err := sitemap.NewIndexNow(sitemap.IndexNowConfig{Key: key, KeyLocation: "https://levqor.example/" + key + ".txt"})
//	res, err := c.Submit(ctx, []string{"https://levqor.example/"})
//
// # Sitemaps
//
// Write emits the sitemaps.org 0.9 format: absolute http(s) URLs only
// (a relative or other-scheme URL is an error, not a broken document), at
// most MaxURLs, each escaped, with <lastmod> as a W3C date when set.
//
// # IndexNow
//
// Google and Bing retired their sitemap "ping" endpoints in 2023;
// IndexNow (api.indexnow.org, shared by Bing, Yandex, Seznam, Naver and
// others) is the live way to announce changed URLs. The site proves it
// owns the host by serving the key as text/plain at KeyLocation. Submit
// POSTs {"host","key","keyLocation","urlList"} in batches of at most
// MaxIndexNowBatch URLs, all of one host. 200 and 202 are success; 400,
// 403 and 422 are ErrRejected with the engine's reason (not retried: the
// request or the key is wrong); 429 and 5xx are retried with backoff
// (Retry-After honoured up to IndexNowConfig.MaxWait) and then
// ErrRateLimited or the last error.
package sitemap
