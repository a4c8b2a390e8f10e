package rules

import "github.com/mxgrid/mxgrid/scanner"

// Rules about where the links lead.

var linkWeights = map[string]float64{}

func linkRisk(f *findings, env *scanner.Envelope, m *scanner.Message) {}
