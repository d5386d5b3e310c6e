// Package spendguard watches daily spend and reports costs.
//
// # Quick start
//
//	openai, _ := spendguard.NewOpenAI(spendguard.OpenAIConfig{AdminKey: key})
//	flags, _ := spendguard.NewFlagsFile(spendguard.FlagsFileConfig{Path: "billing_flags.json"})
//	g, _ := spendguard.NewGuard(spendguard.GuardConfig{Sources: []spendguard.Source{openai}, Pauser: flags})
//	check, err := g.Check(ctx) // every few minutes
//	mux.Handle("/api/generate", spendguard.BlockWhilePaused(flags)(generate))
//
// # Design
//
// Amounts are money.Money: integer minor units with a currency, never float64 dollars.
// Sources report figures (costs, revenue, balances, metrics) for a period:
// Stripe (balance, revenue and fees via stripe-go), OpenAI (the
// organization Costs API), Fixed (a monthly cost, prorated) and SQLMetrics
// (counts from the application's database).
//
// Guard checks today's costs against a daily limit ($50 by default) with
// thresholds at 50%, 80% and 100%: each threshold alerts once per day when
// crossed (OK → ALARM), an end-of-day forecast from the rate so far is
// flagged separately, and at 100% a Pauser stops billing (a billing-flags
// JSON file written atomically, SQLFlags, a database table every replica
// reads, or a function). Resuming is an operator's
// act; the Guard never resumes. A failing source makes the spend unknown,
// not zero: the check is incomplete, names the failed sources and reports
// uncrossed thresholds as UNKNOWN. BlockWhilePaused answers billable routes
// with 503 while billing is paused. A Guard made anew by every run of a
// cron job keeps its record of alerts and pauses in a Memory (MemoryFile:
// a JSON file written atomically; SQLMemory: a database table, locked
// while a Check runs, for cron on several machines), so it too alerts
// once per crossing.
//
// BuildReport aggregates sources into a cost report with totals and net per
// currency, printable as an aligned table (WriteText) or as JSON.
package spendguard
