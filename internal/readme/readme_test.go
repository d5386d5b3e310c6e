package readme_test

import (
	"bufio"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

var update = flag.Bool("update", false, "rewrite the README's Go blocks from the example files")

var marker = regexp.MustCompile(`^<!-- example: (\S+) -->$`)

// quoted returns the code between the README markers of an example file,
// dedented by the indentation of its first line.
func quoted(path string) (string, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return "", err
	}
	s := string(b)
	i := strings.Index(s, "// README:begin\n")
	j := strings.Index(s, "// README:end")
	if i < 0 || j < i {
		return "", fmt.Errorf("%s has no README:begin / README:end markers", path)
	}
	body := s[i+len("// README:begin\n") : strings.LastIndex(s[:j], "\n")+1]
	lines := strings.Split(strings.TrimSuffix(body, "\n"), "\n")
	indent := lines[0][:len(lines[0])-len(strings.TrimLeft(lines[0], "\t"))]
	for k, l := range lines {
		lines[k] = strings.TrimPrefix(l, indent)
	}
	return strings.Join(lines, "\n"), nil
}

func TestREADMEBlocksAreCompiledExamples(t *testing.T) {
	root := filepath.Join("..", "..")
	readme := filepath.Join(root, "README.md")
	b, err := os.ReadFile(readme)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	sc := bufio.NewScanner(strings.NewReader(string(b)))
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	var lines []string
	for sc.Scan() {
		lines = append(lines, sc.Text())
	}
	blocks := 0
	for i := 0; i < len(lines); i++ {
		out = append(out, lines[i])
		if lines[i] != "```go" {
			continue
		}
		blocks++
		prev := ""
		for k := i - 1; k >= 0; k-- {
			if strings.TrimSpace(lines[k]) != "" {
				prev = lines[k]
				break
			}
		}
		m := marker.FindStringSubmatch(prev)
		end := i + 1
		for end < len(lines) && lines[end] != "```" {
			end++
		}
		block := strings.Join(lines[i+1:end], "\n")
		if m == nil {
			t.Errorf("README line %d: Go block without an <!-- example: file --> marker before it", i+1)
			out = append(out, lines[i+1:end]...)
			i = end - 1
			continue
		}
		want, err := quoted(filepath.Join(root, m[1]))
		if err != nil {
			t.Errorf("README line %d: %v", i+1, err)
		} else if block != want {
			if !*update {
				t.Errorf("README line %d differs from %s (run go test ./internal/readme -update):\n--- README\n%s\n--- %s\n%s", i+1, m[1], block, m[1], want)
			}
			block = want
		}
		out = append(out, strings.Split(block, "\n")...)
		i = end - 1
	}
	if blocks == 0 {
		t.Fatal("no Go blocks found: is this the README?")
	}
	if *update {
		if err := os.WriteFile(readme, []byte(strings.Join(out, "\n")+"\n"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}
