package model

import (
	"testing"

	"github.com/mxgrid/mxgrid/scanner"
)

// TestModelSymbolsAreExplained: the panel explains every symbol.
func TestModelSymbolsAreExplained(t *testing.T) {
	for _, name := range []string{SymbolSpam, SymbolHam} {
		if scanner.SymbolHelp(name) == "" {
			t.Errorf("symbol %s has no scanner.SymbolHelp sentence", name)
		}
	}
}
