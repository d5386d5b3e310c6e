package dsar_test

import (
	"context"
	"database/sql"
	"net/http"

	"github.com/levqor/levqor/dsar"
	"github.com/levqor/levqor/tokens"
)

// Example_readme is the dsar section of the README, compiled.
func Example_readme() {
	ctx, mux := context.Background(), http.NewServeMux()
	var (
		db    *sql.DB
		users dsar.Source
		key   []byte
		info  dsar.Controller
		m     *tokens.Manager
	)
	if db == nil {
		return // compiled, not run
	}
	// README:begin
	orders, _ := dsar.NewSQLSource(dsar.SQLSourceConfig{DB: db, Table: "orders", SubjectColumn: "user_email", Columns: []string{"id", "item", "total"}})
	invoices, _ := dsar.NewSQLSource(dsar.SQLSourceConfig{DB: db, Table: "invoices", SubjectColumn: "user_email",
		Columns: []string{"id", "address", "amount"}, Strategy: dsar.EraseNull, EraseColumns: []string{"user_email", "address"}})
	svc, _ := dsar.New(ctx, dsar.Config{Sources: []dsar.Source{orders, invoices, users}, DB: db, SubjectKey: key, Controller: info})
	mux.Handle("/api/user/", http.StripPrefix("/api/user", tokens.RequireAuth(m)(svc.Handler(dsar.HandlerConfig{
		Subject: func(r *http.Request) (string, bool) {
			c, ok := tokens.FromContext(r.Context())
			if !ok {
				return "", false // no claims: the handler answers 401
			}
			return c.Subject, true
		},
	}))))
	// README:end
}
