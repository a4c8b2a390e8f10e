package rules

import "github.com/mxgrid/mxgrid/scanner"

// Rules about sender identity: who the message claims to be from.

var identityWeights = map[string]float64{}

func identity(f *findings, env *scanner.Envelope, m *scanner.Message) {}
