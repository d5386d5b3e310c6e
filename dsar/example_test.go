package dsar_test

import (
	"context"
	"database/sql"
	"fmt"
	"log/slog"
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
