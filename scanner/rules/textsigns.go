package rules

import "github.com/mxgrid/mxgrid/scanner"

// Rules about what the text asks of the reader.

var textWeights = map[string]float64{}

func textSigns(f *findings, env *scanner.Envelope, m *scanner.Message) {}
