package main

import (
	"bytes"
	"fmt"
	"html/template"
	"net/http"
	"sort"
	"strconv"

	"github.com/levqor/levqor/money"
	"github.com/levqor/levqor/secheaders"
	"github.com/levqor/levqor/spendguard"
)

// costChart is the stacked bar chart of daily costs by source, in the
// currency with the most cost (other currencies are in the table).
type costChart struct {
	Currency string
	Max      string // the tallest day, formatted
	Bars     []costBar
	Legend   []legendEntry
	Width    int
	Height   int
}

type costBar struct {
	X, W     int
	Day      string
	Total    string
	Unknown  bool // a source failed that day: drawn as a hatched outline
	Segments []costSegment
}

type costSegment struct {
	Y, H  int
	Class string
	Title string
}

type legendEntry struct{ Class, Name string }

// latencyChart is the last hour's mean latency per minute, anomalies
// marked.
type latencyChart struct {
	Width, Height int
	Points        string // polyline points
	Marks         []latencyMark
	Max           string
}

type latencyMark struct {
	X, Y  int
	Title string
}

type currencyView struct {
	Currency, Costs, Revenue, Net string
}

const (
	chartW, chartH = 720, 180
	seriesClasses  = 6 // s0..s5 in the stylesheet
)

func buildCostChart(c costsPanel) *costChart {
	if c.State != "ok" || len(c.Days) == 0 {
		return nil
	}
	// The currency with the most cost over the period.
	cur, most := "", int64(-1)
	for k, t := range c.Report.Totals {
		if t.Costs.Amount > most || (t.Costs.Amount == most && k < cur) {
			cur, most = k, t.Costs.Amount
		}
	}
	if cur == "" {
		return nil
	}
	// Sources with a cost in the currency, in the legend's order.
	var names []string
	seen := map[string]bool{}
	for _, day := range c.Days {
		for _, s := range day.Sources {
			for _, l := range s.Lines {
				if l.Kind == spendguard.KindCost && l.Amount.Currency == cur && !seen[s.Name] {
					seen[s.Name] = true
					names = append(names, s.Name)
				}
			}
		}
	}
	sort.Strings(names)
	class := map[string]string{}
	ch := &costChart{Currency: cur, Width: chartW, Height: chartH}
	for i, n := range names {
		class[n] = "s" + strconv.Itoa(i%seriesClasses)
		ch.Legend = append(ch.Legend, legendEntry{class[n], n})
	}
	perDay := make([]map[string]int64, len(c.Days))
	var top int64 = 1
	for i, day := range c.Days {
		perDay[i] = map[string]int64{}
		var total int64
		for _, s := range day.Sources {
			for _, l := range s.Lines {
				if l.Kind == spendguard.KindCost && l.Amount.Currency == cur {
					perDay[i][s.Name] += l.Amount.Amount
					total += l.Amount.Amount
				}
			}
		}
		top = max(top, total)
	}
	ch.Max = money.New(top, cur).String()
	slot := chartW / len(c.Days)
	for i, day := range c.Days {
		bar := costBar{X: i*slot + 2, W: max(1, slot-4), Day: day.Period.Start.Format("Jan 2"), Unknown: !day.Complete}
		y := chartH
		var total int64
		for _, n := range names {
			v := perDay[i][n]
			if v <= 0 {
				continue
			}
			total += v
			h := int(v * (chartH - 10) / top)
			if h == 0 {
				h = 1
			}
			y -= h
			bar.Segments = append(bar.Segments, costSegment{Y: y, H: h, Class: class[n], Title: fmt.Sprintf("%s %s: %s", bar.Day, n, money.New(v, cur))})
		}
		bar.Total = money.New(total, cur).String()
		if bar.Unknown {
			bar.Total = "unknown"
		}
		ch.Bars = append(ch.Bars, bar)
	}
	return ch
}

func buildLatencyChart(p sloPanel) *latencyChart {
	if len(p.Series) == 0 {
		return nil
	}
	var top int64 = 1
	for _, pt := range p.Series {
		top = max(top, pt.MeanUS)
	}
	ch := &latencyChart{Width: chartW, Height: chartH / 2, Max: fmt.Sprintf("%.1f ms", float64(top)/1000)}
	step := float64(chartW) / float64(len(p.Series)-1)
	var pts bytes.Buffer
	for i, pt := range p.Series {
		x := int(float64(i) * step)
		y := ch.Height - 4 - int(pt.MeanUS*int64(ch.Height-8)/top)
		fmt.Fprintf(&pts, "%d,%d ", x, y)
		if pt.Anomalies > 0 {
			ch.Marks = append(ch.Marks, latencyMark{X: x, Y: y, Title: fmt.Sprintf("%s: %d anomalous requests (mean %.1f ms, max %.1f ms)",
				pt.Minute.Format("15:04"), pt.Anomalies, float64(pt.MeanUS)/1000, float64(pt.MaxUS)/1000)})
		}
	}
	ch.Points = pts.String()
	return ch
}

func currencyViews(c costsPanel) []currencyView {
	var out []currencyView
	for cur, t := range c.Report.Totals {
		out = append(out, currencyView{cur, t.Costs.String(), t.Revenue.String(), t.Net.String()})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Currency < out[j].Currency })
	return out
}

// dashboardHandlers returns GET /dashboard and GET /dashboard.json.
func (a *app) dashboardHandlers() (page, data http.Handler, err error) {
	tmpl, err := template.New("dashboard.html").Funcs(template.FuncMap{
		"money": moneyText,
		"pct":   func(f float64) string { return strconv.FormatFloat(f*100, 'f', 3, 64) + "%" },
		"rate":  func(f float64) string { return strconv.FormatFloat(f, 'f', 2, 64) },
		"ms":    func(us int64) string { return strconv.FormatFloat(float64(us)/1000, 'f', 1, 64) + " ms" },
		"bytes": func(n int64) string { return strconv.FormatFloat(float64(n)/(1<<20), 'f', 2, 64) + " MiB" },
	}).ParseFS(templates, "templates/dashboard.html")
	if err != nil {
		return nil, nil, err
	}
	// The dashboard's own policy: the default (nonces for its one style and
	// script) without upgrade-insecure-requests, as the ops listener is
	// plain HTTP on loopback; violations are reported to the ops listener.
	h, err := secheaders.New(secheaders.Config{CSP: secheaders.DefaultCSP().UpgradeInsecureRequests(false).ReportURI("/csp-report")})
	if err != nil {
		return nil, nil, err
	}
	page = h.Handler(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		d := a.dash.data(r.Context())
		d.Nonce = secheaders.Nonce(r.Context())
		d.Chart, d.Series, d.Currencies = buildCostChart(d.Costs), buildLatencyChart(d.SLO), currencyViews(d.Costs)
		var buf bytes.Buffer
		if err := tmpl.Execute(&buf, d); err != nil {
			a.log.ErrorContext(r.Context(), "render dashboard", "err", err)
			writeError(w, http.StatusInternalServerError, "internal error")
			return
		}
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		w.Header().Set("Cache-Control", "no-store")
		_, _ = w.Write(buf.Bytes())
	}))
	data = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Cache-Control", "no-store")
		writeJSON(w, http.StatusOK, a.dash.data(r.Context()))
	})
	return page, data, nil
}
