package rules

import "github.com/mxgrid/mxgrid/scanner"

// Rules about attachments that carry phishing or malware.

var attachWeights = map[string]float64{}

func attachRisk(f *findings, env *scanner.Envelope, m *scanner.Message) {}
