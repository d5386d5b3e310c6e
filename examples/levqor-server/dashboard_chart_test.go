package main

import (
	"testing"
	"time"

	"github.com/levqor/levqor/money"
	"github.com/levqor/levqor/spendguard"
)

// TestCostChart: bars stack the cost lines of the currency with the most
// cost, the legend names only sources with such a cost, and a day whose
// sources failed is outlined and totalled "unknown".
func TestCostChart(t *testing.T) {
	day := func(i int, complete bool, usd, eur int64) spendguard.Report {
		start := time.Date(2026, 11, 1+i, 0, 0, 0, 0, time.UTC)
		return spendguard.Report{Period: spendguard.Period{Start: start, End: start.AddDate(0, 0, 1)}, Complete: complete,
			Sources: []spendguard.SourceReport{
				{Name: "stripe", Lines: []spendguard.Line{{Label: "fees", Kind: spendguard.KindCost, Amount: money.New(usd, "USD")}, {Label: "revenue", Kind: spendguard.KindRevenue, Amount: money.New(9999, "USD")}}},
				{Name: "openai", Lines: []spendguard.Line{{Label: "usage", Kind: spendguard.KindCost, Amount: money.New(eur, "EUR")}}},
				{Name: "database", Lines: []spendguard.Line{{Label: "users", Kind: spendguard.KindMetric, Count: 3}}},
			}}
	}
	c := costsPanel{panelState: known(), Days: []spendguard.Report{day(0, true, 300, 10), day(1, false, 100, 10), day(2, true, 600, 10)},
		Report: spendguard.Report{Complete: true, Totals: map[string]spendguard.CurrencyTotal{
			"USD": {Costs: money.New(1000, "USD")}, "EUR": {Costs: money.New(30, "EUR")}}}}
	ch := buildCostChart(c)
	if ch == nil || ch.Currency != "USD" || len(ch.Bars) != 3 || ch.Max != "$6.00" {
		t.Fatalf("chart: %+v", ch)
	}
	if len(ch.Legend) != 1 || ch.Legend[0].Name != "stripe" {
		t.Fatalf("legend: %+v", ch.Legend)
	}
	if b := ch.Bars[1]; !b.Unknown || b.Total != "unknown" || ch.Bars[0].Unknown || ch.Bars[0].Total != "$3.00" {
		t.Fatalf("bars: %+v", ch.Bars)
	}
	// Heights are proportional: the tallest day fills the chart (less 10).
	if h := ch.Bars[2].Segments[0].H; h != chartH-10 || ch.Bars[0].Segments[0].H != (chartH-10)/2 {
		t.Fatalf("heights: %+v", ch.Bars)
	}
	if buildCostChart(costsPanel{panelState: unknown("down"), Days: c.Days}) != nil {
		t.Fatal("a chart was drawn for an unknown panel")
	}
}
