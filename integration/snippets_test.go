package integration_test

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"go/ast"
	"go/parser"
	"go/scanner"
	"go/token"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"

	// The documentation's snippets use these modules. Importing them here
	// keeps them in this module's go.mod, which the snippets are built in,
	// and has the go command compile them before this test runs, so that
	// the snippets' build finds them in the build cache.
	_ "github.com/pacehttp/pacehttp/otelpace"
	_ "github.com/pacehttp/pacehttp/redislimit"
)

// TestDocSnippetsCompile builds every ```go block of README.md and
// docs/*.md, so that the lines the documentation gives compile as written.
// The blocks are compiled in this module, which has the SDKs, through
// go build -overlay: nothing is written to the source tree. Errors point at
// the Markdown file and line.
func TestDocSnippetsCompile(t *testing.T) {
	docs, err := filepath.Glob("../docs/*.md")
	if err != nil {
		t.Fatal(err)
	}
	var snippets []snippet
	for _, doc := range append([]string{"../README.md"}, docs...) {
		s, err := readSnippets(doc)
		if err != nil {
			t.Fatal(err)
		}
		snippets = append(snippets, s...)
	}
	// README's program, and one at least per vendor SDK in docs/sdks.md.
	if len(snippets) < 10 {
		t.Fatalf("found %d Go snippets in the documentation; the extraction is broken", len(snippets))
	}
	if out, err := buildSnippets(t, snippets); err != nil {
		t.Errorf("documentation snippets do not compile: %v\n%s", err, out)
	}
}

// TestDocSnippetsCheckFails: the check fails on a snippet that does not
// compile, and names the document and line.
func TestDocSnippetsCheckFails(t *testing.T) {
	broken := snippet{doc: "docs/broken.md", line: 7, code: "client := pacehttp.NewClient()\nclient := &http.Client{}\n"}
	out, err := buildSnippets(t, []snippet{broken})
	if err == nil {
		t.Fatalf("a snippet redeclaring a variable compiled:\n%s", out)
	}
	if !strings.Contains(string(out), "docs/broken.md:8") {
		t.Errorf("the error does not name docs/broken.md:8:\n%s", out)
	}
}

// A snippet is one ```go block: code, and where it starts (the line after
// the fence).
type snippet struct {
	doc  string
	line int
	code string
}

// readSnippets returns the ```go blocks of a Markdown file.
func readSnippets(path string) ([]snippet, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	doc := strings.TrimPrefix(filepath.ToSlash(path), "../")
	var out []snippet
	var cur *snippet
	sc := bufio.NewScanner(f)
	for n := 1; sc.Scan(); n++ {
		line := sc.Text()
		switch {
		case cur == nil && strings.TrimSpace(line) == "```go":
			cur = &snippet{doc: doc, line: n + 1}
		case cur != nil && strings.TrimSpace(line) == "```":
			out = append(out, *cur)
			cur = nil
		case cur != nil:
			cur.code += line + "\n"
		}
	}
	if cur != nil {
		return nil, fmt.Errorf("%s:%d: unterminated ```go block", doc, cur.line-1)
	}
	return out, sc.Err()
}

// buildSnippets compiles each snippet as a package of its own in this
// module, with the race detector when the test has it (so that the SDKs
// come from the build cache the test itself filled), and returns the go
// command's output.
func buildSnippets(t *testing.T, snippets []snippet) ([]byte, error) {
	t.Helper()
	wd, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	tmp := t.TempDir()
	overlay := map[string]string{}
	args := []string{"build", "-overlay", filepath.Join(tmp, "overlay.json")}
	if raceEnabled {
		args = append(args, "-race")
	}
	var unparsed []string
	for i, s := range snippets {
		src, err := s.source()
		if err != nil {
			unparsed = append(unparsed, err.Error())
			continue
		}
		file := filepath.Join(tmp, fmt.Sprintf("snippet%d.go", i))
		if err := os.WriteFile(file, src, 0o644); err != nil {
			t.Fatal(err)
		}
		dir := fmt.Sprintf("docsnippet%d", i)
		overlay[filepath.Join(wd, dir, "snippet.go")] = file
		args = append(args, "./"+dir)
	}
	js, err := json.Marshal(map[string]any{"Replace": overlay})
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(tmp, "overlay.json"), js, 0o644); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command(goTool(t), args...).CombinedOutput()
	if len(unparsed) > 0 {
		out = append([]byte(strings.Join(unparsed, "\n")+"\n"), out...)
		err = errors.Join(append([]error{err}, fmt.Errorf("%d snippets do not parse", len(unparsed)))...)
	}
	return out, err
}

func goTool(t *testing.T) string {
	t.Helper()
	if p, err := exec.LookPath("go"); err == nil {
		return p
	}
	p := filepath.Join(os.Getenv("GOROOT"), "bin", "go")
	if _, err := os.Stat(p); err != nil {
		t.Fatalf("no go command to build the snippets with: %v", err)
	}
	return p
}

// The free names a fragment may use without declaring them, as the
// documentation's prose introduces them.
const fragmentParams = "ctx context.Context, apiKey string, base http.RoundTripper, logger *slog.Logger, secret []byte"

// knownImports are the packages a fragment may use without importing them.
// The SDKs' packages, whose names clash (two openai, two option), are not
// among them: a fragment that uses one says which with an import block.
var knownImports = map[string]string{
	"context":       "context",
	"errors":        "errors",
	"fmt":           "fmt",
	"http":          "net/http",
	"io":            "io",
	"os":            "os",
	"slog":          "log/slog",
	"strings":       "strings",
	"time":          "time",
	"pacehttp":      "github.com/pacehttp/pacehttp",
	"otelpace":      "github.com/pacehttp/pacehttp/otelpace",
	"redislimit":    "github.com/pacehttp/pacehttp/redislimit",
	"redis":         "github.com/redis/go-redis/v9",
	"retryablehttp": "github.com/hashicorp/go-retryablehttp",
	"genai":         "google.golang.org/genai",
	"sdkmetric":     "go.opentelemetry.io/otel/sdk/metric",
	"pacetest":      "github.com/pacehttp/pacehttp/httptest_helpers",
	"signal":        "os/signal",
	"sync":          "sync",
	"json":          "encoding/json",
	"url":           "net/url",
	"strconv":       "strconv",
	"atomic":        "sync/atomic",
	"httptest":      "net/http/httptest",
	"bytes":         "bytes",
	"log":           "log",
	"math":          "math",
	"filepath":      "path/filepath",
	"rate":          "golang.org/x/time/rate",
	"metric":        "go.opentelemetry.io/otel/metric",
	"otel":          "go.opentelemetry.io/otel",
	"trace":         "go.opentelemetry.io/otel/trace",
	"tracetest":     "go.opentelemetry.io/otel/sdk/trace/tracetest",
	"metricdata":    "go.opentelemetry.io/otel/sdk/metric/metricdata",
	"sdktrace":      "go.opentelemetry.io/otel/sdk/trace",
}

// packageQualifiers returns the names code uses as x in x.Sel, outside
// comments and strings.
func packageQualifiers(code string) map[string]bool {
	var sc scanner.Scanner
	fset := token.NewFileSet()
	src := []byte(code)
	sc.Init(fset.AddFile("", -1, len(src)), src, nil, 0)
	names := map[string]bool{}
	prev := ""
	for {
		_, tok, lit := sc.Scan()
		if tok == token.EOF {
			return names
		}
		if tok == token.PERIOD && prev != "" {
			names[prev] = true
		}
		prev = ""
		if tok == token.IDENT {
			prev = lit
		}
	}
}

var importLine = regexp.MustCompile(`^import\s+(\(|(\w+\s+)?"[^"]+")`)

// source returns the snippet as a Go file. A block that starts with a
// package clause is a whole file and is kept as it is. Any other block is
// a fragment: its leading import declarations stay at the top of the file,
// the rest becomes the body of a function whose parameters are the free
// names of fragmentParams; the packages of knownImports it names are
// imported, and each variable it declares is marked used, since a fragment
// shows how to build a value, not what to do with it. A //line directive
// makes the compiler report the Markdown file's lines.
func (s snippet) source() ([]byte, error) {
	directive := func(line int) string { return fmt.Sprintf("//line %s:%d\n", s.doc, line) }
	if strings.HasPrefix(strings.TrimSpace(s.code), "package ") {
		return []byte(directive(s.line) + s.code), nil
	}

	// Split the leading import declarations from the statements.
	lines := strings.SplitAfter(s.code, "\n")
	n := 0
	for n < len(lines) {
		l := strings.TrimSpace(lines[n])
		if l == "" || strings.HasPrefix(l, "//") {
			n++
			continue
		}
		if !importLine.MatchString(l) {
			break
		}
		if strings.HasSuffix(l, "(") {
			for n < len(lines) && strings.TrimSpace(lines[n]) != ")" {
				n++
			}
		}
		n++
	}
	imports, body := strings.Join(lines[:n], ""), strings.Join(lines[n:], "")
	bodyLine := s.line + n

	explicit := map[string]bool{}
	if f, err := parser.ParseFile(token.NewFileSet(), "", "package p\n"+imports, parser.ImportsOnly); err == nil {
		for _, im := range f.Imports {
			path, _ := strconv.Unquote(im.Path.Value)
			name := filepath.Base(path)
			if im.Name != nil {
				name = im.Name.Name
			}
			explicit[name], explicit[path] = true, true
		}
	}
	qualifiers := packageQualifiers(body + "\n" + fragmentParams)
	var auto []string
	for name, path := range knownImports {
		if qualifiers[name] && !explicit[name] && !explicit[path] {
			auto = append(auto, fmt.Sprintf("%s %q\n", name, path))
		}
	}
	slices.Sort(auto)

	var src strings.Builder
	src.WriteString("package snippet\n\nimport (\n" + strings.Join(auto, "") + ")\n\n")
	src.WriteString(directive(s.line) + imports + "\n")
	src.WriteString("func snippet(" + fragmentParams + ") error {\n")
	head := src.Len()
	src.WriteString(directive(bodyLine) + body)
	tail := "\nreturn nil\n}\n"

	// Mark the fragment's variables used, after the statement declaring
	// each, and end with a return unless the fragment does.
	whole := src.String() + tail
	fset := token.NewFileSet()
	f, err := parser.ParseFile(fset, "", whole, parser.SkipObjectResolution)
	if err != nil {
		return nil, fmt.Errorf("%s:%d: %v", s.doc, s.line, err)
	}
	fn := f.Decls[len(f.Decls)-1].(*ast.FuncDecl)
	stmts := fn.Body.List[:len(fn.Body.List)-1] // without our return
	type insert struct {
		at   int
		text string
	}
	var inserts []insert
	for _, st := range stmts {
		var names []string
		switch st := st.(type) {
		case *ast.AssignStmt:
			if st.Tok == token.DEFINE {
				for _, e := range st.Lhs {
					if id, ok := e.(*ast.Ident); ok && id.Name != "_" {
						names = append(names, id.Name)
					}
				}
			}
		case *ast.DeclStmt:
			if gd, ok := st.Decl.(*ast.GenDecl); ok && gd.Tok == token.VAR {
				for _, sp := range gd.Specs {
					for _, id := range sp.(*ast.ValueSpec).Names {
						if id.Name != "_" {
							names = append(names, id.Name)
						}
					}
				}
			}
		}
		if len(names) > 0 {
			uses := ""
			for _, name := range names {
				uses += "; _ = " + name
			}
			inserts = append(inserts, insert{fset.File(st.End()).Offset(st.End()), uses})
		}
	}
	if len(stmts) > 0 {
		if _, ok := stmts[len(stmts)-1].(*ast.ReturnStmt); ok {
			tail = "\n}\n"
		}
	}
	out := src.String()
	for i := len(inserts) - 1; i >= 0; i-- {
		at := inserts[i].at
		if at < head {
			continue
		}
		out = out[:at] + inserts[i].text + out[at:]
	}
	return []byte(out + tail), nil
}
