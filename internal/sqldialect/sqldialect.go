// Package sqldialect tells SQLite from PostgreSQL behind a *sql.DB and
// writes the few statements that differ. Levqor's SQL is otherwise plain
// SQL both accept; statements are written with ? placeholders and
// rebound for PostgreSQL.
package sqldialect

import (
	"database/sql"
	"database/sql/driver"
	"errors"
	"fmt"
	"io"
	"net"
	"reflect"
	"strconv"
	"strings"
	"syscall"
)

// Dialect is a SQL engine family.
type Dialect int

// Dialects.
const (
	SQLite   Dialect = iota + 1 // ? placeholders
	Postgres                    // $1 placeholders
)

// ErrUnsupported reports a database/sql driver Levqor does not know.
var ErrUnsupported = errors.New("unsupported database driver (want modernc.org/sqlite, github.com/mattn/go-sqlite3, github.com/jackc/pgx/v5/stdlib or github.com/lib/pq)")

// drivers maps a driver's Go package to its dialect.
var drivers = map[string]Dialect{
	"modernc.org/sqlite":              SQLite,
	"github.com/mattn/go-sqlite3":     SQLite,
	"github.com/jackc/pgx/v5/stdlib":  Postgres,
	"github.com/jackc/pgx/v4/stdlib":  Postgres,
	"github.com/lib/pq":               Postgres,
	"github.com/jackc/pgx/v5/pgxpool": Postgres,
}

// Detect returns the dialect of db's driver. An unknown driver is an
// error, never a guess.
func Detect(db *sql.DB) (Dialect, error) {
	if db == nil {
		return 0, errors.New("nil *sql.DB")
	}
	t := reflect.TypeOf(db.Driver())
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	if d, ok := drivers[t.PkgPath()]; ok {
		return d, nil
	}
	return 0, fmt.Errorf("%w: %s.%s", ErrUnsupported, t.PkgPath(), t.Name())
}

func (d Dialect) String() string {
	switch d {
	case SQLite:
		return "sqlite"
	case Postgres:
		return "postgres"
	}
	return "unknown"
}

// Rebind rewrites ? placeholders as $1, $2, ... for PostgreSQL; for
// SQLite it returns q unchanged. A ? inside a single-quoted string
// literal is left alone.
func (d Dialect) Rebind(q string) string {
	if d != Postgres {
		return q
	}
	var b strings.Builder
	b.Grow(len(q) + 8)
	n, quoted := 0, false
	for _, r := range q {
		switch {
		case r == '\'':
			quoted = !quoted
		case r == '?' && !quoted:
			n++
			b.WriteString("$" + strconv.Itoa(n))
			continue
		}
		b.WriteRune(r)
	}
	return b.String()
}

// AutoIncrement is the column type of an auto-incrementing integer key.
func (d Dialect) AutoIncrement() string {
	if d == Postgres {
		return "BIGSERIAL PRIMARY KEY"
	}
	return "INTEGER PRIMARY KEY AUTOINCREMENT"
}

// ForShare is the row-locking clause that makes a SELECT wait for a
// concurrent writer of the rows it reads (PostgreSQL); SQLite serialises
// writers itself and needs none.
func (d Dialect) ForShare() string {
	if d == Postgres {
		return " FOR SHARE"
	}
	return ""
}

// IsUniqueViolation reports whether err is a unique-constraint violation
// in either engine (SQLSTATE 23505 in PostgreSQL).
func IsUniqueViolation(err error) bool {
	if err == nil {
		return false
	}
	var state interface{ SQLState() string }
	if errors.As(err, &state) {
		return state.SQLState() == "23505"
	}
	return strings.Contains(err.Error(), "UNIQUE constraint failed")
}

// IsConnLost reports whether err says the connection broke under the
// statement (the server restarted or failed over, something between cut
// it): the driver drops that connection, and a read may be sent again on
// another. A timeout is not a lost connection: the server may be slow, and
// a retry would only wait again.
func IsConnLost(err error) bool {
	if err == nil {
		return false
	}
	var netErr net.Error
	if errors.As(err, &netErr) {
		return !netErr.Timeout()
	}
	return errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, io.EOF) || errors.Is(err, driver.ErrBadConn) ||
		errors.Is(err, syscall.ECONNRESET) || errors.Is(err, syscall.EPIPE)
}
