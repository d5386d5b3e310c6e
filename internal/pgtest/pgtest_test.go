package pgtest_test

import (
	"testing"

	"github.com/levqor/levqor/internal/pgtest"
)

func TestMain(m *testing.M) { pgtest.Main(m) }

func TestOpen(t *testing.T) {
	a, b := pgtest.Open(t), pgtest.Open(t)
	if _, err := a.Exec("CREATE TABLE x (id BIGSERIAL PRIMARY KEY, v TEXT)"); err != nil {
		t.Fatal(err)
	}
	if _, err := b.Exec("CREATE TABLE x (id INT)"); err != nil {
		t.Fatalf("databases are not separate: %v", err)
	}
	var v string
	if err := a.QueryRow("SELECT version()").Scan(&v); err != nil || v == "" {
		t.Fatal(v, err)
	}
	t.Log(v)
}
