package contracts

import (
	"fmt"
	"go/ast"
	"go/parser"
	"go/token"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
)

// contract is a set of string values one package defines as constants and
// others must compare through those constants.
type contract struct {
	dir string // the defining package, relative to the module root
	// typ is the constants' type; with constPrefix instead, untyped
	// constants whose names start with it.
	typ, constPrefix string
	// names are the (lower-case) name endings of expressions that hold a
	// value of the contract: v.Reason, ev.Verdict, outcome, p.VirusAction.
	names []string
}

var contracts = []contract{
	{dir: "verdict", typ: "Reason", names: []string{"reason", "verdict"}},
	{dir: "smtpd", typ: "Outcome", names: []string{"outcome"}},
	{dir: "tenant", constPrefix: "Virus", names: []string{"virusaction"}},
}

// TestNoStringLiteralContracts fails when a reason, outcome or virus
// action is compared with a string literal (==, != or a switch case)
// anywhere in the module's non-test code: compare with the constants.
func TestNoStringLiteralContracts(t *testing.T) {
	root := moduleRoot(t)
	values := make([]map[string]bool, len(contracts))
	for i, c := range contracts {
		values[i] = constValues(t, filepath.Join(root, c.dir), c)
		if len(values[i]) == 0 {
			t.Fatalf("no constants for %s.%s%s: update this test's contracts", c.dir, c.typ, c.constPrefix)
		}
	}
	var findings []string
	err := filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() {
			name := d.Name()
			if path != root && (name == "third_party" || name == "testdata" || strings.HasPrefix(name, ".")) {
				return filepath.SkipDir
			}
			return nil
		}
		if !strings.HasSuffix(path, ".go") || strings.HasSuffix(path, "_test.go") {
			return nil
		}
		src, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(root, path)
		findings = append(findings, check(t, rel, src, values)...)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range findings {
		t.Error(f)
	}
}

// The check finds what it is meant to: without this, a check that never
// fires would pass forever.
func TestCheckFindsLiteralComparisons(t *testing.T) {
	values := []map[string]bool{{"virus": true, "spam": true}, {"delivered": true}, {"tag": true}}
	src := `package x
func f() {
	if v.Reason == "virus" {}
	if "spam" != ev.Verdict {}
	if string(v.Reason) == "spam" {}
	if *dp.VirusAction == "tag" {}
	switch outcome {
	case "delivered":
	}
	switch {
	case v.Reason == "virus":
	}
	if v.Reason == verdict.ReasonVirus {}
	if kind == "spam" {}
	if v.Reason == "ham" {}
}`
	got := check(t, "x.go", []byte(src), values)
	if len(got) != 6 {
		t.Fatalf("found %d, want 6:\n%s", len(got), strings.Join(got, "\n"))
	}
}

func check(t *testing.T, path string, src []byte, values []map[string]bool) []string {
	t.Helper()
	fset := token.NewFileSet()
	f, err := parser.ParseFile(fset, path, src, 0)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	report := func(n ast.Node, what string) {
		out = append(out, fmt.Sprintf("%s: %s: compare with the contract's constants", fset.Position(n.Pos()), what))
	}
	ast.Inspect(f, func(n ast.Node) bool {
		switch n := n.(type) {
		case *ast.BinaryExpr:
			if n.Op != token.EQL && n.Op != token.NEQ {
				return true
			}
			for _, pair := range [][2]ast.Expr{{n.X, n.Y}, {n.Y, n.X}} {
				if lit, ok := stringLit(pair[1]); ok && matches(pair[0], lit, values) {
					report(n, fmt.Sprintf("%s compared with %q", exprName(pair[0]), lit))
				}
			}
		case *ast.SwitchStmt:
			if n.Tag == nil {
				return true
			}
			for _, stmt := range n.Body.List {
				for _, e := range stmt.(*ast.CaseClause).List {
					if lit, ok := stringLit(e); ok && matches(n.Tag, lit, values) {
						report(e, fmt.Sprintf("switch on %s with case %q", exprName(n.Tag), lit))
					}
				}
			}
		}
		return true
	})
	return out
}

// matches reports whether e names a contract whose values include lit.
func matches(e ast.Expr, lit string, values []map[string]bool) bool {
	name := strings.ToLower(exprName(e))
	for i, c := range contracts {
		if values[i][lit] && slices.ContainsFunc(c.names, func(n string) bool { return strings.HasSuffix(name, n) }) {
			return true
		}
	}
	return false
}

// exprName is the last identifier of e, looking through *x, (x) and
// conversions like string(x).
func exprName(e ast.Expr) string {
	for {
		switch x := e.(type) {
		case *ast.Ident:
			return x.Name
		case *ast.SelectorExpr:
			return x.Sel.Name
		case *ast.StarExpr:
			e = x.X
		case *ast.ParenExpr:
			e = x.X
		case *ast.CallExpr:
			if len(x.Args) != 1 {
				return ""
			}
			e = x.Args[0]
		default:
			return ""
		}
	}
}

func stringLit(e ast.Expr) (string, bool) {
	lit, ok := e.(*ast.BasicLit)
	if !ok || lit.Kind != token.STRING {
		return "", false
	}
	s, err := strconv.Unquote(lit.Value)
	return s, err == nil
}

// constValues collects the contract's constant values from its package.
func constValues(t *testing.T, dir string, c contract) map[string]bool {
	t.Helper()
	paths, err := filepath.Glob(filepath.Join(dir, "*.go"))
	if err != nil {
		t.Fatal(err)
	}
	vals := map[string]bool{}
	fset := token.NewFileSet()
	for _, path := range paths {
		if strings.HasSuffix(path, "_test.go") {
			continue
		}
		f, err := parser.ParseFile(fset, path, nil, 0)
		if err != nil {
			t.Fatal(err)
		}
		for _, decl := range f.Decls {
			gd, ok := decl.(*ast.GenDecl)
			if !ok || gd.Tok != token.CONST {
				continue
			}
			for _, spec := range gd.Specs {
				vs := spec.(*ast.ValueSpec)
				typed := c.typ != "" && exprName(vs.Type) == c.typ
				for i, name := range vs.Names {
					if !typed && (c.constPrefix == "" || !strings.HasPrefix(name.Name, c.constPrefix) || vs.Type != nil) {
						continue
					}
					if i < len(vs.Values) {
						// The empty string is the zero value, not a name a
						// rename could break, and too common to flag.
						if s, ok := stringLit(vs.Values[i]); ok && s != "" {
							vals[s] = true
						}
					}
				}
			}
		}
	}
	return vals
}

func moduleRoot(t *testing.T) string {
	t.Helper()
	dir, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			t.Fatal("no go.mod above the test's directory")
		}
		dir = parent
	}
}
