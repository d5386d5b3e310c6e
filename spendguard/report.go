package spendguard

import (
	"github.com/levqor/levqor/money"

	"context"
	"fmt"
	"io"
	"maps"
	"slices"
	"strconv"
	"text/tabwriter"
	"time"
)

// Report is the cost dashboard: every source's figures for a period, with
// totals and net per currency.
type Report struct {
	Period      Period                   `json:"period"`
	GeneratedAt time.Time                `json:"generated_at"`
	Sources     []SourceReport           `json:"sources"`
	Totals      map[string]CurrencyTotal `json:"totals"`
	// Complete is false when a source failed; its figures are then missing
	// from the totals, which are lower bounds.
	Complete bool `json:"complete"`
}

// SourceReport is one source's part of a Report.
type SourceReport struct {
	Name  string `json:"name"`
	Lines []Line `json:"lines,omitempty"`
	Err   string `json:"error,omitempty"`
}

// CurrencyTotal sums one currency.
type CurrencyTotal struct {
	Costs   money.Money `json:"costs"`
	Revenue money.Money `json:"revenue"`
	Net     money.Money `json:"net"`
}

// BuildReport asks every source for the period's figures. A source that
// returns an error contributes nothing, even lines it returned with the
// error (the rule Guard.Check applies too): partial figures would look
// complete. Totals are checked sums; one that would overflow marks the
// report incomplete and names the currency. A period that ends before it
// starts is asked of no source: every source is reported failed with
// ErrPeriod (sources would answer it with zeros, which would look like a
// complete report); an empty one (End equal to Start) is asked as usual.
func BuildReport(ctx context.Context, sources []Source, p Period, now time.Time) Report {
	r := Report{Period: p, GeneratedAt: now.UTC(), Totals: map[string]CurrencyTotal{}, Complete: true}
	for _, src := range sources {
		sr := SourceReport{Name: src.Name()}
		var lines []Line
		var err error
		if p.End.Before(p.Start) {
			err = fmt.Errorf("%w: %s is before %s", ErrPeriod, p.End.Format(time.RFC3339), p.Start.Format(time.RFC3339))
		} else {
			lines, err = src.Lines(ctx, p)
		}
		if err == nil {
			totals, terr := addTotals(r.Totals, lines)
			if terr == nil {
				r.Totals, sr.Lines = totals, lines
			}
			err = terr
		}
		if err != nil {
			sr.Err = err.Error()
			r.Complete = false
		}
		r.Sources = append(r.Sources, sr)
	}
	return r
}

// addTotals returns totals plus lines' costs and revenue, or an error on
// overflow (totals are then unchanged).
func addTotals(totals map[string]CurrencyTotal, lines []Line) (map[string]CurrencyTotal, error) {
	out := maps.Clone(totals)
	for _, l := range lines {
		if l.Kind != KindCost && l.Kind != KindRevenue {
			continue
		}
		cur := l.Amount.Currency
		t, ok := out[cur]
		if !ok {
			t = CurrencyTotal{Costs: money.New(0, cur), Revenue: money.New(0, cur), Net: money.New(0, cur)}
		}
		var err error
		if l.Kind == KindCost {
			t.Costs, err = t.Costs.Add(l.Amount)
		} else {
			t.Revenue, err = t.Revenue.Add(l.Amount)
		}
		if err == nil {
			t.Net, err = t.Revenue.Sub(t.Costs)
		}
		if err != nil {
			return totals, fmt.Errorf("total in %s: %w", cur, err)
		}
		out[cur] = t
	}
	return out, nil
}

// WriteText prints the report as an aligned table.
func (r Report) WriteText(w io.Writer) error {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintf(tw, "Cost report %s to %s\n", r.Period.Start.UTC().Format("2006-01-02 15:04"), r.Period.End.UTC().Format("2006-01-02 15:04"))
	fmt.Fprintln(tw, "SOURCE\tITEM\tKIND\tAMOUNT")
	for _, s := range r.Sources {
		if s.Err != "" {
			fmt.Fprintf(tw, "%s\t(failed: %s)\n", s.Name, s.Err)
			continue
		}
		for _, l := range s.Lines {
			v := l.Amount.String()
			if l.Kind == KindMetric {
				v = strconv.FormatInt(l.Count, 10)
			}
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", s.Name, l.Label, l.Kind, v)
		}
	}
	for _, cur := range slices.Sorted(maps.Keys(r.Totals)) {
		t := r.Totals[cur]
		fmt.Fprintf(tw, "TOTAL %s\tcosts\t\t%s\n", cur, t.Costs)
		fmt.Fprintf(tw, "TOTAL %s\trevenue\t\t%s\n", cur, t.Revenue)
		fmt.Fprintf(tw, "TOTAL %s\tnet\t\t%s\n", cur, t.Net)
	}
	if !r.Complete {
		fmt.Fprintln(tw, "INCOMPLETE: a source failed; totals are lower bounds")
	}
	return tw.Flush()
}
