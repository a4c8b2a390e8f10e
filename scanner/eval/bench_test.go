package eval

import (
	"context"
	"testing"

	"github.com/mxgrid/mxgrid/scanner"
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
	samples := append(spam, ham...)
	m, err := model.Default()
	if err != nil {
		b.Fatal(err)
	}
	check := model.NewCheck(m, nil)
	r := rules.New(nil)
	ctx := context.Background()
	env := &scanner.Envelope{}
	var bytes int64
	b.ReportAllocs()
	b.ResetTimer()
	i := 0
	for b.Loop() {
		s := samples[i%len(samples)]
		i++
		bytes += int64(len(s.Raw))
		msg := scanner.Parse(s.Raw)
		if _, err := check.Check(ctx, env, msg); err != nil {
			b.Fatal(err)
		}
		if _, err := r.Check(ctx, env, msg); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "msgs/s")
	b.SetBytes(bytes / int64(max(1, b.N)))
}
