package msc_test

import (
	"go/ast"
	"go/doc"
	"go/parser"
	"go/token"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// TestDocComments fails on an exported identifier of package msc or
// msctest without a doc comment: every type, function, method, constant,
// variable, and field of an exported struct. A function or method that
// returns an error must say in its doc which (a sentinel Err…, or the
// word "error").
func TestDocComments(t *testing.T) {
	for _, dir := range []string{".", "msctest"} {
		for _, miss := range undocumented(t, dir) {
			t.Errorf("%s: %s", dir, miss)
		}
	}
}

var mentionsError = regexp.MustCompile(`\bErr[A-Z]\w*|\berrors?\b`)

// undocumented parses the package in dir (not its tests) and returns what
// it exports without a doc comment.
func undocumented(t *testing.T, dir string) []string {
	t.Helper()
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	fset := token.NewFileSet()
	var files []*ast.File
	for _, e := range entries {
		name := e.Name()
		if e.IsDir() || !strings.HasSuffix(name, ".go") || strings.HasSuffix(name, "_test.go") {
			continue
		}
		f, err := parser.ParseFile(fset, filepath.Join(dir, name), nil, parser.ParseComments)
		if err != nil {
			t.Fatal(err)
		}
		files = append(files, f)
	}
	pkg, err := doc.NewFromFiles(fset, files, "github.com/msc-go/msc/"+dir)
	if err != nil {
		t.Fatal(err)
	}
	var miss []string
	if strings.TrimSpace(pkg.Doc) == "" {
		miss = append(miss, "package "+pkg.Name)
	}
	values := func(vs []*doc.Value) {
		for _, v := range vs {
			for _, spec := range v.Decl.Specs {
				vs := spec.(*ast.ValueSpec)
				for _, n := range vs.Names {
					// A name is documented by its own comment, or by its
					// group's when the group declares it alone.
					if n.IsExported() && vs.Doc == nil && vs.Comment == nil && (v.Doc == "" || len(v.Decl.Specs) > 1) {
						miss = append(miss, n.Name)
					}
				}
			}
		}
	}
	funcs := func(recv string, fs []*doc.Func) {
		for _, f := range fs {
			name := recv + f.Name
			if strings.TrimSpace(f.Doc) == "" {
				miss = append(miss, name)
				continue
			}
			if returnsError(f.Decl) && !mentionsError.MatchString(f.Doc) {
				miss = append(miss, name+" (returns an error: its doc does not say which)")
			}
		}
	}
	values(pkg.Consts)
	values(pkg.Vars)
	funcs("", pkg.Funcs)
	for _, typ := range pkg.Types {
		if strings.TrimSpace(typ.Doc) == "" {
			miss = append(miss, "type "+typ.Name)
		}
		values(typ.Consts)
		values(typ.Vars)
		funcs("", typ.Funcs)
		funcs(typ.Name+".", typ.Methods)
		for _, spec := range typ.Decl.Specs {
			st, ok := spec.(*ast.TypeSpec).Type.(*ast.StructType)
			if !ok {
				continue
			}
			for _, field := range st.Fields.List {
				for _, n := range field.Names {
					if n.IsExported() && field.Doc == nil && field.Comment == nil {
						miss = append(miss, typ.Name+"."+n.Name)
					}
				}
			}
		}
	}
	return miss
}

// returnsError reports whether a function's last result is an error.
func returnsError(fd *ast.FuncDecl) bool {
	rs := fd.Type.Results
	if rs == nil || len(rs.List) == 0 {
		return false
	}
	id, ok := rs.List[len(rs.List)-1].Type.(*ast.Ident)
	return ok && id.Name == "error"
}
