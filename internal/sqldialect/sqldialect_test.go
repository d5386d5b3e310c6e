package sqldialect_test

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"sync"
	"syscall"
	"testing"

	_ "modernc.org/sqlite"

	"github.com/levqor/levqor/internal/pgtest"
	"github.com/levqor/levqor/internal/sqldialect"
	"github.com/levqor/levqor/internal/sqlitetest"
)

func TestRebind(t *testing.T) {
	for _, tc := range []struct{ in, pg string }{
		{"SELECT 1", "SELECT 1"},
		{"SELECT a FROM t WHERE b = ? AND c = ?", "SELECT a FROM t WHERE b = $1 AND c = $2"},
		{"SELECT '?' || ? FROM t", "SELECT '?' || $1 FROM t"},
		{"INSERT INTO t VALUES (?, 'it''s', ?)", "INSERT INTO t VALUES ($1, 'it''s', $2)"},
	} {
		if got := sqldialect.Postgres.Rebind(tc.in); got != tc.pg {
			t.Errorf("Postgres.Rebind(%q) = %q, want %q", tc.in, got, tc.pg)
		}
		if got := sqldialect.SQLite.Rebind(tc.in); got != tc.in {
			t.Errorf("SQLite.Rebind changed %q", tc.in)
		}
	}
}

type unknownDriver struct{}

func (unknownDriver) Open(string) (driver.Conn, error) { return nil, errors.New("no") }

func TestDetect(t *testing.T) {
	db, err := sql.Open("sqlite", "file::memory:")
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if d, err := sqldialect.Detect(db); err != nil || d != sqldialect.SQLite {
		t.Fatalf("modernc: %v %v", d, err)
	}
	other := sql.OpenDB(connector{})
	if _, err := sqldialect.Detect(other); !errors.Is(err, sqldialect.ErrUnsupported) {
		t.Fatalf("unknown driver: %v", err)
	}
}

type connector struct{}

func (connector) Connect(context.Context) (driver.Conn, error) { return nil, errors.New("no") }
func (connector) Driver() driver.Driver                        { return unknownDriver{} }

func TestPostgres(t *testing.T) {
	db := pgtest.Open(t)
	if d, err := sqldialect.Detect(db); err != nil || d != sqldialect.Postgres {
		t.Fatalf("pgx: %v %v", d, err)
	}
	if _, err := db.Exec(`CREATE TABLE u (email TEXT UNIQUE)`); err != nil {
		t.Fatal(err)
	}
	q := sqldialect.Postgres.Rebind(`INSERT INTO u (email) VALUES (?)`)
	if _, err := db.Exec(q, "a@example.com"); err != nil {
		t.Fatal(err)
	}
	_, err := db.Exec(q, "a@example.com")
	if !sqldialect.IsUniqueViolation(err) {
		t.Fatalf("duplicate: %v", err)
	}
	lite, _ := sql.Open("sqlite", "file::memory:")
	defer lite.Close()
	_, _ = lite.Exec(`CREATE TABLE u (email TEXT UNIQUE); INSERT INTO u VALUES ('a')`)
	if _, err := lite.Exec(`INSERT INTO u VALUES ('a')`); !sqldialect.IsUniqueViolation(err) {
		t.Fatalf("sqlite duplicate: %v", err)
	}
	if sqldialect.IsUniqueViolation(errors.New("other")) || sqldialect.IsUniqueViolation(nil) {
		t.Fatal("false positive")
	}
}

func TestMain(m *testing.M) { pgtest.Main(m) }

// TestCreateSchemaConcurrent: processes creating the same tables at once
// all succeed on PostgreSQL (without the lock, IF NOT EXISTS races and
// one fails on pg_class's unique index).
func TestCreateSchemaConcurrent(t *testing.T) {
	stmts := []string{
		`CREATE TABLE IF NOT EXISTS a (id TEXT PRIMARY KEY)`,
		`CREATE INDEX IF NOT EXISTS a_id ON a (id)`,
		`CREATE TABLE IF NOT EXISTS b (id TEXT PRIMARY KEY)`,
	}
	for round := range 5 {
		url := pgtest.NewDatabase(t)
		errs := make(chan error, 8)
		var wg sync.WaitGroup
		for range 8 {
			wg.Go(func() {
				db, err := sql.Open("pgx", url)
				if err != nil {
					errs <- err
					return
				}
				defer db.Close()
				errs <- sqldialect.Postgres.CreateSchema(context.Background(), db, "test", stmts...)
			})
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			if err != nil {
				t.Fatalf("round %d: %v", round, err)
			}
		}
	}
	lite := sqlitetest.Open(t, sqlitetest.Path(t))
	for range 2 {
		if err := sqldialect.SQLite.CreateSchema(context.Background(), lite, "test", stmts...); err != nil {
			t.Fatalf("sqlite: %v", err)
		}
	}
}

// TestCreateSchemaAddColumn: a table created by an earlier version gains
// a column on both engines, and running the schema again changes nothing.
func TestCreateSchemaAddColumn(t *testing.T) {
	ctx := context.Background()
	pg, err := sql.Open("pgx", pgtest.NewDatabase(t))
	if err != nil {
		t.Fatal(err)
	}
	defer pg.Close()
	for _, tc := range []struct {
		d  sqldialect.Dialect
		db *sql.DB
	}{
		{sqldialect.SQLite, sqlitetest.Open(t, sqlitetest.Path(t))},
		{sqldialect.Postgres, pg},
	} {
		t.Run(tc.d.String(), func(t *testing.T) {
			if err := tc.d.CreateSchema(ctx, tc.db, "test", `CREATE TABLE IF NOT EXISTS t (id TEXT PRIMARY KEY)`); err != nil {
				t.Fatal(err)
			}
			if _, err := tc.db.ExecContext(ctx, `INSERT INTO t (id) VALUES ('old')`); err != nil {
				t.Fatal(err)
			}
			v2 := []string{`CREATE TABLE IF NOT EXISTS t (id TEXT PRIMARY KEY)`,
				`ALTER TABLE t ADD COLUMN IF NOT EXISTS ready INTEGER NOT NULL DEFAULT 1`}
			for range 2 {
				if err := tc.d.CreateSchema(ctx, tc.db, "test", v2...); err != nil {
					t.Fatal(err)
				}
			}
			var ready int
			if err := tc.db.QueryRowContext(ctx, `SELECT ready FROM t WHERE id = 'old'`).Scan(&ready); err != nil || ready != 1 {
				t.Fatalf("ready = %d, %v; want the default 1 on the old row", ready, err)
			}
			// Any other failure still fails.
			if err := tc.d.CreateSchema(ctx, tc.db, "test", `ALTER TABLE missing ADD COLUMN IF NOT EXISTS x INTEGER`); err == nil {
				t.Fatal("ALTER of a missing table succeeded")
			}
		})
	}
}

// TestIsConnLost: a broken connection is told from a slow server and from
// errors a retry would not change.
func TestIsConnLost(t *testing.T) {
	timeout := &net.OpError{Op: "read", Net: "tcp", Err: os.ErrDeadlineExceeded}
	for _, tc := range []struct {
		name string
		err  error
		want bool
	}{
		{"nil", nil, false},
		{"unexpected EOF (pgx reading a closed socket)", fmt.Errorf("query: %w", io.ErrUnexpectedEOF), true},
		{"EOF", io.EOF, true},
		{"bad connection", driver.ErrBadConn, true},
		{"reset", &net.OpError{Op: "read", Net: "tcp", Err: syscall.ECONNRESET}, true},
		{"refused", fmt.Errorf("connect: %w", &net.OpError{Op: "dial", Net: "tcp", Err: syscall.ECONNREFUSED}), true},
		{"broken pipe", syscall.EPIPE, true},
		{"timeout", timeout, false},
		{"context deadline", context.DeadlineExceeded, false},
		{"no rows", sql.ErrNoRows, false},
		{"constraint", errors.New("UNIQUE constraint failed: t.id"), false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := sqldialect.IsConnLost(tc.err); got != tc.want {
				t.Fatalf("IsConnLost(%v) = %v, want %v", tc.err, got, tc.want)
			}
		})
	}
}
