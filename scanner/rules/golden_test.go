package rules

import (
	"bufio"
	"context"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"flag"
	"fmt"
	"hash"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/mxgrid/mxgrid/scanner"
	"github.com/mxgrid/mxgrid/scanner/eval"
	"github.com/mxgrid/mxgrid/scanner/model"
)

var (
	updateGolden = flag.Bool("update-golden", false, "rewrite testdata/scanresults.golden from the current code")
	dumpGolden   = flag.String("dump-golden", "", "write every message's scan result to this file, to diff two builds")
)

const goldenFile = "testdata/scanresults.golden"

// TestScanResultsAreUnchanged pins what the scanner makes of every message
// of the committed corpora and, when present, the training corpus: the
// parse (text, links, parts, leaves, parser symbols), the model's features,
// margin, Bayes probability and symbol, and the rules' symbols with scores
// and details, each corpus hashed to one line of testdata/scanresults.golden.
// Work done only for speed must leave every line as it is. A change meant
// to alter detection rewrites the file with -update-golden; -dump-golden
// writes the per-message results of two builds for diffing.
func TestScanResultsAreUnchanged(t *testing.T) {
	corpora := []struct{ name, dir string }{
		{"scanner/testdata/realworld", "../testdata/realworld"},
		{"testdata/corpus", "../../testdata/corpus"},
	}
	if d, ok := eval.CorpusDir(); ok {
		corpora = append(corpora, struct{ name, dir string }{"shared/corpus/train", d})
	} else {
		t.Log("training corpus absent: its line is not checked")
	}
	m, err := model.Default()
	if err != nil {
		t.Fatal(err)
	}
	mc := model.NewCheck(m, nil)
	r := New(nil)
	r.now = func() time.Time { return time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC) }
	var dump *bufio.Writer
	if *dumpGolden != "" {
		f, err := os.Create(*dumpGolden)
		if err != nil {
			t.Fatal(err)
		}
		defer f.Close()
		dump = bufio.NewWriter(f)
		defer dump.Flush()
	}
	want := readGolden(t)
	got := map[string]string{}
	for _, c := range corpora {
		var samples []eval.Sample
		for _, sub := range []string{"spam", "phish", "ham"} {
			if _, err := os.Stat(filepath.Join(c.dir, sub)); err != nil {
				continue
			}
			s, err := eval.LoadDir(filepath.Join(c.dir, sub), sub != "ham")
			if err != nil {
				t.Fatal(err)
			}
			samples = append(samples, s...)
		}
		sum := sha256.New()
		for _, s := range samples {
			rec := scanRecord(t, m, mc, r, s.Raw)
			fmt.Fprintf(sum, "%s\n", rec)
			if dump != nil {
				rel, _ := filepath.Rel(c.dir, s.Path)
				fmt.Fprintf(dump, "%s/%s\t%s\n", c.name, rel, rec)
			}
		}
		got[c.name] = fmt.Sprintf("%d %x", len(samples), sum.Sum(nil))
		if !*updateGolden && want[c.name] != got[c.name] {
			t.Errorf("%s (%s): scan results changed: got %q, golden %q (rerun with -dump-golden=FILE on both builds and diff)", c.name, c.dir, got[c.name], want[c.name])
		}
	}
	if *updateGolden {
		for name, line := range got {
			want[name] = line
		}
		var b strings.Builder
		b.WriteString("# corpus, messages, sha256 of the scan results (TestScanResultsAreUnchanged)\n")
		for _, name := range []string{"scanner/testdata/realworld", "testdata/corpus", "shared/corpus/train"} {
			if line, ok := want[name]; ok {
				fmt.Fprintf(&b, "%s %s\n", name, line)
			}
		}
		if err := os.WriteFile(goldenFile, []byte(b.String()), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

func readGolden(t *testing.T) map[string]string {
	t.Helper()
	data, err := os.ReadFile(goldenFile)
	if err != nil && !*updateGolden {
		t.Fatal(err)
	}
	out := map[string]string{}
	for _, line := range strings.Split(string(data), "\n") {
		if name, rest, ok := strings.Cut(line, " "); ok && !strings.HasPrefix(line, "#") {
			out[name] = rest
		}
	}
	return out
}

// scanRecord is one message's parse and verdict as one line; bulky parts
// (text, leaf data, features) are hashed.
func scanRecord(t *testing.T, m *model.Model, mc *model.Check, r *Rules, raw []byte) string {
	t.Helper()
	ctx := context.Background()
	env := &scanner.Envelope{}
	msg := scanner.Parse(raw)
	var b strings.Builder
	fmt.Fprintf(&b, "subject=%q from=%q <%q> text=%s structure=%q parser=%v html=%s",
		msg.Subject, msg.FromName, msg.FromAddr, digest(msg.Text), msg.Structure, msg.Symbols,
		digest(fmt.Sprintf("%+v", msg.HTML)))
	fmt.Fprintf(&b, " urls=%s parts=%s", digest(fmt.Sprintf("%+v", msg.URLs)), digest(fmt.Sprintf("%+v", msg.Parts)))
	for _, l := range msg.Leaves {
		fmt.Fprintf(&b, " leaf=%q,%s,%v,%v", l.Path, digest(string(l.Data)), l.Err, l.Truncated)
	}
	feats := m.Extractor().Features(msg)
	fh := sha256.New()
	for _, f := range feats {
		writeUint32(fh, f)
	}
	z, p := m.Judge(msg)
	res, err := mc.Check(ctx, env, msg)
	if err != nil {
		t.Fatal(err)
	}
	fmt.Fprintf(&b, " features=%d/%x margin=%x bayes=%x model=%v", len(feats), fh.Sum(nil)[:8], z, p, res.Symbols)
	if res, err = r.Check(ctx, env, msg); err != nil {
		t.Fatal(err)
	}
	fmt.Fprintf(&b, " rules=%q", fmt.Sprint(res.Symbols))
	return b.String()
}

func writeUint32(h hash.Hash, v uint32) {
	var b [4]byte
	binary.LittleEndian.PutUint32(b[:], v)
	h.Write(b[:])
}

func digest(s string) string {
	sum := sha256.Sum256([]byte(s))
	return hex.EncodeToString(sum[:6])
}
