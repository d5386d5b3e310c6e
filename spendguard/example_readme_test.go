package spendguard_test

import (
	"context"
	"net/http"
	"os"
	"time"

	"github.com/stripe/stripe-go/v85"

	"github.com/levqor/levqor/alert"
	"github.com/levqor/levqor/money"
	"github.com/levqor/levqor/spendguard"
)

// Example_readme is the spendguard section of the README, compiled.
func Example_readme() {
	ctx, mux := context.Background(), http.NewServeMux()
	var (
		sc       *stripe.Client
		key      string
		notifier alert.Notifier
		generate http.Handler = http.NotFoundHandler()
		period   spendguard.Period
	)
	if sc == nil {
		return // compiled, not run
	}
	// README:begin
	limit, _ := money.Parse(os.Getenv("DAILY_SPEND_LIMIT"), "USD") // "50" → 5000 cents
	flags, _ := spendguard.NewFlagsFile(spendguard.FlagsFileConfig{Path: "data/billing_flags.json"})
	stripeFees, _ := spendguard.NewStripe(spendguard.StripeConfig{Client: sc})
	openai, _ := spendguard.NewOpenAI(spendguard.OpenAIConfig{AdminKey: key})
	// The daily guard watches spend a pause can stop; fixed monthly costs
	// belong in the report only (prorated, they would pause billing daily
	// once they exceed the daily limit).
	g, _ := spendguard.NewGuard(spendguard.GuardConfig{
		Sources: []spendguard.Source{stripeFees, openai},
		Limit:   limit, Pauser: flags, Notifier: notifier,
	})
	check, err := g.Check(ctx) // run every few minutes
	mux.Handle("/api/generate", spendguard.BlockWhilePaused(flags)(generate))

	hosting, _ := spendguard.NewFixed(spendguard.FixedConfig{Label: "hosting", Monthly: money.New(30000, "USD")})
	report := spendguard.BuildReport(ctx, []spendguard.Source{stripeFees, openai, hosting}, period, time.Now())
	_ = report.WriteText(os.Stdout)
	// README:end
	_, _ = check, err
}
