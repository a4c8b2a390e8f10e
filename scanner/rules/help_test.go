package rules

import (
	"testing"

	"github.com/mxgrid/mxgrid/scanner"
)

// TestEverySymbolIsExplained: the panel's message page explains each
// symbol with scanner.SymbolHelp; a rule added without its sentence fails.
func TestEverySymbolIsExplained(t *testing.T) {
	for name := range DefaultWeights() {
		if scanner.SymbolHelp(name) == "" {
			t.Errorf("symbol %s has no scanner.SymbolHelp sentence", name)
		}
	}
}
