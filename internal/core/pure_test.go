package core

import (
	"go/parser"
	"go/token"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// The core is pure: no sockets, goroutines, locks, OS or clock, so that
// the simulator drives it as the process does. Its source imports only
// packages that reach none of them (go list -deps ./internal/core lists
// neither os, sync, syscall nor time: fmt, for one, reaches all three).
func TestCoreImportsArePure(t *testing.T) {
	allowed := map[string]bool{"cmp": true, "errors": true, "maps": true, "math": true, "math/bits": true,
		"slices": true, "sort": true, "strconv": true, "strings": true, "unicode/utf8": true}
	files, err := filepath.Glob("*.go")
	if err != nil {
		t.Fatal(err)
	}
	fset := token.NewFileSet()
	for _, f := range files {
		if strings.HasSuffix(f, "_test.go") {
			continue
		}
		src, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		af, err := parser.ParseFile(fset, f, src, parser.ImportsOnly)
		if err != nil {
			t.Fatal(err)
		}
		for _, im := range af.Imports {
			path, _ := strconv.Unquote(im.Path.Value)
			if !allowed[path] {
				t.Errorf("%s imports %q: the core must stay pure (no OS, locks, goroutines or clock)", f, path)
			}
		}
	}
}
