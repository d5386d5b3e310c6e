// Package readme holds the test that keeps the README's Go code blocks
// compiled: each block is preceded by an HTML comment naming the example
// file it is quoted from, and must equal the code between that file's
// "// README:begin" and "// README:end" lines. Run
//
//	go test ./internal/readme -update
//
// to copy the examples into the README after changing them.
package readme
