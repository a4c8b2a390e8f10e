package archtest

import (
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/mxgrid/mxgrid/internal/testenv"
)

const module = "github.com/mxgrid/mxgrid/"

// goList runs `go list args...` at the repository root and returns its
// output lines.
func goList(t *testing.T, args ...string) []string {
	t.Helper()
	cmd := exec.Command("go", append([]string{"list"}, args...)...)
	cmd.Dir = testenv.RepoRoot(t)
	cmd.Stderr = os.Stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("go list %s: %v", strings.Join(args, " "), err)
	}
	return strings.Split(strings.TrimSpace(string(out)), "\n")
}

// TestArchitectureNamesEveryPackage keeps docs/architecture.md's package map
// complete: a package added without its line there fails here.
func TestArchitectureNamesEveryPackage(t *testing.T) {
	doc, err := os.ReadFile(filepath.Join(testenv.RepoRoot(t), "docs", "architecture.md"))
	if err != nil {
		t.Fatal(err)
	}
	for _, pkg := range goList(t, "./...") {
		name := strings.TrimPrefix(pkg, module)
		if !strings.Contains(string(doc), "`"+name+"`") {
			t.Errorf("package %s is not on the map in docs/architecture.md (want a line naming `%s`)", pkg, name)
		}
	}
}

// TestForbiddenImports checks the arrows docs/architecture.md forbids,
// over everything the packages pull in (-deps), tests included where the
// rule is about tests (-test).
func TestForbiddenImports(t *testing.T) {
	for _, tt := range []struct {
		rule      string
		pkgs      []string
		withTests bool
		forbidden []string
	}{
		{
			rule:      "the tenant hot path and the store do not drag in the relay or the SMTP client",
			pkgs:      []string{"./tenant", "./store"},
			forbidden: []string{module + "relay", "github.com/emersion/go-smtp"},
		},
		{
			rule:      "leaf packages' tests do not boot a node (end-to-end tests live in e2e)",
			pkgs:      []string{"./scanner/...", "./relay", "./smtpd", "./tenant", "./events", "./geo"},
			withTests: true,
			forbidden: []string{module + "node"},
		},
		{
			rule:      "the relay does not reach back up the mail path",
			pkgs:      []string{"./relay"},
			forbidden: []string{module + "smtpd", module + "scanner"},
		},
		{
			rule:      "checks do not reach the SMTP side, the relay or the event path",
			pkgs:      []string{"./scanner/..."},
			forbidden: []string{module + "smtpd", module + "relay", module + "events", module + "store"},
		},
		{
			rule:      "events, geo and store do not reach back up the mail path",
			pkgs:      []string{"./events", "./geo", "./store"},
			forbidden: []string{module + "smtpd", module + "scanner", module + "relay"},
		},
	} {
		t.Run(tt.rule, func(t *testing.T) {
			args := []string{"-deps"}
			if tt.withTests {
				args = append(args, "-test")
			}
			for _, line := range goList(t, append(args, tt.pkgs...)...) {
				// -test lines look like "pkg [importer.test]".
				dep, importer, _ := strings.Cut(line, " ")
				if importer == "" {
					importer = "by " + strings.Join(tt.pkgs, " ")
				}
				for _, f := range tt.forbidden {
					if dep == f || strings.HasPrefix(dep, f+"/") {
						t.Errorf("%s is pulled in %s", dep, importer)
					}
				}
			}
		})
	}
}

// TestOnlyAllowedImporters checks the packages only one place may import
// directly: memberlist stays inside cluster, and only the composition
// root's users build a node.
func TestOnlyAllowedImporters(t *testing.T) {
	allowed := map[string][]string{
		"github.com/hashicorp/memberlist": {"cluster"},
		module + "node":                   {"cmd/mxgrid", "internal/demo", "internal/nodetest"},
	}
	for _, line := range goList(t, "-f", "{{.ImportPath}} {{join .Imports \" \"}}", "./...") {
		fields := strings.Fields(line)
		pkg := strings.TrimPrefix(fields[0], module)
		for _, imp := range fields[1:] {
			who, ok := allowed[imp]
			if ok && !slices.Contains(who, pkg) {
				t.Errorf("%s imports %s; only %v may", pkg, imp, who)
			}
		}
	}
}
