// Package bench measures Levqor side by side with the libraries it
// replaces. It is a separate module so that the peers never enter the
// library's go.mod. Run: go test -bench . -benchmem
package bench
