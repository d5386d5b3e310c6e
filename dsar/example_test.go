package dsar_test

import (
	"context"
	"database/sql"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"

	"github.com/levqor/levqor/dsar"
	_ "modernc.org/sqlite"
)

func Example() {
	dir, _ := os.MkdirTemp("", "dsar-example-")
	defer os.RemoveAll(dir)
	db, _ := sql.Open("sqlite", "file:"+filepath.Join(dir, "app.db"))
	defer db.Close()
	_, _ = db.Exec(`CREATE TABLE users (email TEXT, name TEXT);
		INSERT INTO users VALUES ('ann@example.com', 'Ann'), ('ben@example.com', 'Ben')`)

	users, _ := dsar.NewSQLSource(dsar.SQLSourceConfig{DB: db, Table: "users", SubjectColumn: "email", Columns: []string{"name"}})
	svc, _ := dsar.New(context.Background(), dsar.Config{
		Sources: []dsar.Source{users}, DB: db, SubjectKey: []byte("a secret of 16+ bytes"),
		Logger: slog.New(slog.DiscardHandler),
	})
	ctx := context.Background()
	sum, _ := svc.Summary(ctx, "ann@example.com")
	fmt.Println("before:", sum)
	rep, _ := svc.Erase(ctx, "ann@example.com", "support")
	fmt.Println("erased:", rep.Rows)
	sum, _ = svc.Summary(ctx, "ben@example.com")
	fmt.Println("ben keeps:", sum)
	// Output:
	// before: map[users:1]
	// erased: map[users:1]
	// ben keeps: map[users:1]
}

// ExampleService_Handler serves the authenticated subject's own export;
// the subject comes from the auth layer (here a header stands in for it).
func ExampleService_Handler() {
	dir, _ := os.MkdirTemp("", "dsar-example-")
	defer os.RemoveAll(dir)
	db, _ := sql.Open("sqlite", "file:"+filepath.Join(dir, "app.db"))
	defer db.Close()
	_, _ = db.Exec(`CREATE TABLE users (email TEXT, name TEXT); INSERT INTO users VALUES ('ann@example.com', 'Ann')`)
	users, _ := dsar.NewSQLSource(dsar.SQLSourceConfig{DB: db, Table: "users", SubjectColumn: "email", Columns: []string{"name"}})
	svc, _ := dsar.New(context.Background(), dsar.Config{Sources: []dsar.Source{users}, DB: db, SubjectKey: []byte("a secret of 16+ bytes"), Logger: slog.New(slog.DiscardHandler)})
	h := svc.Handler(dsar.HandlerConfig{Subject: func(r *http.Request) (string, bool) {
		s := r.Header.Get("X-User") // in the server: tokens.FromContext
		return s, s != ""
	}})
	for _, user := range []string{"", "ann@example.com"} {
		req := httptest.NewRequest("GET", "/export/summary", nil)
		if user != "" {
			req.Header.Set("X-User", user)
		}
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		fmt.Print(rec.Code, " ", rec.Body.String())
	}
	// Output:
	// 401 {"error":"authentication required"}
	// 200 {"records":{"users":1},"subject":"ann@example.com"}
}
