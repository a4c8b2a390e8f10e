package scanner_test

import (
	"os"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/mxgrid/mxgrid/scanner"
	"github.com/mxgrid/mxgrid/scanner/antivirus"
	"github.com/mxgrid/mxgrid/scanner/auth"
	"github.com/mxgrid/mxgrid/scanner/model"
	"github.com/mxgrid/mxgrid/scanner/rules"
)

// TestSymbolReferenceIsComplete: docs/symbols.md has a row for every
// symbol of the parser, the rules, the model, sender authentication and
// the built-in antivirus, with the default weight the code uses, and the
// panel can explain each.
func TestSymbolReferenceIsComplete(t *testing.T) {
	doc, err := os.ReadFile("../docs/symbols.md")
	if err != nil {
		t.Fatal(err)
	}
	rows := map[string][]string{}
	row := regexp.MustCompile("(?m)^\\| `([A-Z0-9_<>*]+)` \\|(.*)$")
	for _, m := range row.FindAllStringSubmatch(string(doc), -1) {
		rows[m[1]] = strings.Split(m[2], "|")
	}
	check := func(weights map[string]float64) {
		for name, w := range weights {
			cells, ok := rows[name]
			if !ok {
				t.Errorf("%s has no row in docs/symbols.md", name)
				continue
			}
			got, err := strconv.ParseFloat(strings.TrimSpace(cells[0]), 64)
			if err != nil || got != w {
				t.Errorf("docs/symbols.md gives %s weight %q, the code %v", name, strings.TrimSpace(cells[0]), w)
			}
			if scanner.SymbolHelp(name) == "" {
				t.Errorf("%s has no scanner.SymbolHelp sentence", name)
			}
		}
	}
	check(scanner.ParserWeights())
	check(rules.DefaultWeights())
	check(model.DefaultWeights())
	check(auth.Weights())
	check(antivirus.Weights())
}
