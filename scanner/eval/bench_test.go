package eval

import (
	"context"
	"testing"

	"github.com/mxgrid/mxgrid/internal/testenv"
	"github.com/mxgrid/mxgrid/scanner"
	"github.com/mxgrid/mxgrid/scanner/antivirus"
	"github.com/mxgrid/mxgrid/scanner/model"
	"github.com/mxgrid/mxgrid/scanner/rules"
)

// BenchmarkVerdict measures one core doing what a node does per message
// for content: parse MIME once, extract features and score with the
// embedded model, run the rules. It cycles through the full corpus when
// present (else the committed sample); one op is one message.
//
//	go test ./scanner/eval -run '^$' -bench Verdict -benchmem
func BenchmarkVerdict(b *testing.B) {
	dir := "../../testdata/corpus"
	if d, ok := CorpusDir(); ok {
		dir = d
	}
	spam, err := LoadDir(dir+"/spam", true)
	if err != nil {
		b.Fatal(err)
	}
	ham, err := LoadDir(dir+"/ham", false)
	if err != nil {
		b.Fatal(err)
	}
	var raws [][]byte
	for _, s := range append(spam, ham...) {
		raws = append(raws, s.Raw)
	}
	benchVerdict(b, raws, modelAndRules(b)...)
}

// BenchmarkVerdictSMTPSource scans the message scripts/bench-smtp.sh has
// smtp-source send (5 KB of numbered lines of X), with the built-in
// antivirus too: the content checks behind the node's CPU per message in
// that benchmark.
func BenchmarkVerdictSMTPSource(b *testing.B) {
	av, err := antivirus.New(antivirus.DefaultConfig(), nil)
	if err != nil {
		b.Fatal(err)
	}
	benchVerdict(b, [][]byte{testenv.SMTPSourceMessage()}, append(modelAndRules(b), av)...)
}

func modelAndRules(b *testing.B) []scanner.Check {
	m, err := model.Default()
	if err != nil {
		b.Fatal(err)
	}
	return []scanner.Check{model.NewCheck(m, nil), rules.New(nil)}
}

// benchVerdict parses the messages in turn and runs the checks on each;
// one op is one message.
func benchVerdict(b *testing.B, raws [][]byte, checks ...scanner.Check) {
	ctx := context.Background()
	env := &scanner.Envelope{}
	var bytes int64
	b.ReportAllocs()
	b.ResetTimer()
	i := 0
	for b.Loop() {
		raw := raws[i%len(raws)]
		i++
		bytes += int64(len(raw))
		msg := scanner.Parse(raw)
		for _, c := range checks {
			if _, err := c.Check(ctx, env, msg); err != nil {
				b.Fatal(err)
			}
		}
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "msgs/s")
	b.SetBytes(bytes / int64(max(1, b.N)))
}
