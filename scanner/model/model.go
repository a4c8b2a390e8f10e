// Package model is mxgrid's statistical spam classifier.
//
// A message becomes a set of hashed binary features (words and orthogonal
// sparse bigrams of the subject and visible text, hidden HTML text, link
// domains, the MIME shape, the From display name; see features.go). Two
// differently biased classifiers judge those features: a logistic
// regression, trained offline with several shuffled passes and feature
// dropout, gives a margin z; naive Bayes with chi-square combining gives a
// probability p (nb.go). The check turns z into a MODEL_SPAM or MODEL_HAM
// symbol and p into MODEL_BAYES.
//
// The model is two fixed-size tables of 2^bits int8 values (regression
// weights and Bayes log-odds) plus a bias and a scale: memory does not
// grow with traffic and nodes keep no per-user state. The file is the
// tables, zlib-compressed, behind a small header.
package model

import (
	"bufio"
	"bytes"
	"compress/zlib"
	_ "embed"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"slices"

	"github.com/mxgrid/mxgrid/scanner"
)

// FormatVersion is the version of the model file layout. Version 2 added
// the naive Bayes table after the regression weights; version 3 the
// calibration (Points) in the header, so a model carries its own scale.
const FormatVersion = 3

const magic = "MXGRIDM\x00"

// Bounds on header values, so a corrupt or hostile file cannot make Load
// allocate without limit.
const (
	minBits = 12
	maxBits = 26
)

//go:embed default.model
var defaultModel []byte

// Model is a trained classifier. It is immutable and safe for concurrent use.
type Model struct {
	bits   uint8
	window uint8
	// Spam and Ham count the training messages, for reports.
	spam, ham uint32
	bias      float32
	scale     float32 // weight of one int8 step, dropout gain folded in
	w         []int8
	nb        []int8      // naive Bayes table, see nb.go
	cal       Calibration // see check.go
	x         *Extractor
}

// Stats describes a model for logs and reports.
type Stats struct {
	Bits, Window   int
	Spam, Ham      int
	NonZero        int
	FeatureVersion int
}

// Stats reports the model's shape and training counts.
func (m *Model) Stats() Stats {
	nz := 0
	for _, v := range m.w {
		if v != 0 {
			nz++
		}
	}
	return Stats{Bits: int(m.bits), Window: int(m.window), Spam: int(m.spam), Ham: int(m.ham), NonZero: nz, FeatureVersion: FeatureVersion}
}

// Calibration is how the model's outputs become verdict points and how a
// verdict score becomes a probability.
func (m *Model) Calibration() Calibration { return m.cal }

// WithCalibration returns a copy of m calibrated with cal (the tables are
// shared: both are immutable).
func (m *Model) WithCalibration(cal Calibration) *Model {
	c := *m
	c.cal = cal
	return &c
}

// Extractor returns the feature extractor matching this model.
func (m *Model) Extractor() *Extractor { return m.x }

// Margin is the model's log-odds that a message with these features is
// spam (as trained; the check calibrates it into a score).
func (m *Model) Margin(feats []uint32) float64 {
	var sum int64
	for _, i := range feats {
		sum += int64(m.w[i])
	}
	return m.margin(sum, len(feats))
}

// margin is the margin of n features whose weights add up to sum.
func (m *Model) margin(sum int64, n int) float64 {
	if n == 0 {
		return float64(m.bias)
	}
	return float64(m.bias) + float64(m.scale)*float64(sum)/math.Sqrt(float64(n))
}

// NBScore is the naive Bayes spam probability of a message with these
// features (chi-square combined; 0.5 when it knows nothing about them).
func (m *Model) NBScore(feats []uint32) float64 {
	bs := make([]int8, len(feats))
	for k, i := range feats {
		bs[k] = m.nb[i]
	}
	return nbScore(bs)
}

// Classify returns the regression margin of msg.
func (m *Model) Classify(msg *scanner.Message) float64 {
	return m.Margin(m.x.Features(msg))
}

// Judge returns the regression margin and the Bayes probability of msg.
// Both tables are read in one pass over the features, which arrive
// sorted, so the cache misses of the two (a megabyte each) overlap, and
// the features stay in the extractor's scratch instead of a new slice.
func (m *Model) Judge(msg *scanner.Message) (z, p float64) {
	s := m.x.extract(msg)
	defer m.x.pool.Put(s)
	var sum int64
	// Only the Bayes bytes nbScore counts are kept (without a branch:
	// whether a feature counts is a coin toss to the branch predictor).
	s.nb = slices.Grow(s.nb[:0], len(s.feats))[:len(s.feats)]
	k := 0
	for _, i := range s.feats {
		sum += int64(m.w[i])
		b := m.nb[i]
		s.nb[k] = b
		k += int(nbCounts[uint8(b)])
	}
	return m.margin(sum, len(s.feats)), nbScore(s.nb[:k])
}

// WriteTo writes the model file. The output depends only on the model, so
// the same training data gives the same bytes.
func (m *Model) WriteTo(w io.Writer) (int64, error) {
	var buf bytes.Buffer
	buf.WriteString(magic)
	hdr := []any{uint16(FormatVersion), uint16(FeatureVersion), m.bits, m.window, m.spam, m.ham, m.bias, m.scale,
		m.cal.Slope, m.cal.BayesSlope, m.cal.Offset, m.cal.Mid, m.cal.Steep}
	for _, v := range hdr {
		if err := binary.Write(&buf, binary.LittleEndian, v); err != nil {
			return 0, fmt.Errorf("encode model header: %w", err)
		}
	}
	zw, err := zlib.NewWriterLevel(&buf, zlib.BestCompression)
	if err != nil {
		return 0, fmt.Errorf("compress model: %w", err)
	}
	if err := binary.Write(zw, binary.LittleEndian, m.w); err != nil {
		return 0, fmt.Errorf("compress model: %w", err)
	}
	if err := binary.Write(zw, binary.LittleEndian, m.nb); err != nil {
		return 0, fmt.Errorf("compress model: %w", err)
	}
	if err := zw.Close(); err != nil {
		return 0, fmt.Errorf("compress model: %w", err)
	}
	n, err := w.Write(buf.Bytes())
	return int64(n), err
}

// Read parses a model file.
func Read(r io.Reader) (*Model, error) {
	br := bufio.NewReader(r)
	head := make([]byte, len(magic))
	if _, err := io.ReadFull(br, head); err != nil || string(head) != magic {
		return nil, errors.New("not an mxgrid model file")
	}
	var h struct {
		Format, Features uint16
		Bits, Window     uint8
		Spam, Ham        uint32
		Bias, Scale      float32
		Cal              [5]float64 // slope, bayes slope, offset, mid, steep
	}
	if err := binary.Read(br, binary.LittleEndian, &h); err != nil {
		return nil, fmt.Errorf("model header: %w", err)
	}
	switch {
	case h.Format != FormatVersion:
		return nil, fmt.Errorf("model file format %d, this build reads only format %d: retrain it with this build's mxgrid train", h.Format, FormatVersion)
	case h.Features != FeatureVersion:
		return nil, fmt.Errorf("model trained with feature version %d, this build extracts version %d: retrain it with this build's mxgrid train", h.Features, FeatureVersion)
	case h.Bits < minBits || h.Bits > maxBits || h.Window < 1 || h.Window > 8:
		return nil, fmt.Errorf("model header: bits %d window %d out of range", h.Bits, h.Window)
	case !finite(h.Bias) || !finite(h.Scale) || !finiteAll(h.Cal[:]):
		return nil, errors.New("model header: bias, scale or calibration not finite")
	}
	zr, err := zlib.NewReader(br)
	if err != nil {
		return nil, fmt.Errorf("model weights: %w", err)
	}
	m := &Model{bits: h.Bits, window: h.Window, spam: h.Spam, ham: h.Ham, bias: h.Bias, scale: h.Scale,
		cal: Calibration{Slope: h.Cal[0], BayesSlope: h.Cal[1], Offset: h.Cal[2], Mid: h.Cal[3], Steep: h.Cal[4]},
		w:   make([]int8, 1<<h.Bits), nb: make([]int8, 1<<h.Bits)}
	if err := binary.Read(zr, binary.LittleEndian, m.w); err != nil {
		return nil, fmt.Errorf("model weights: %w", err)
	}
	if err := binary.Read(zr, binary.LittleEndian, m.nb); err != nil {
		return nil, fmt.Errorf("model bayes table: %w", err)
	}
	// Reading to EOF makes zlib verify its checksum.
	if n, err := io.Copy(io.Discard, zr); err != nil || n != 0 {
		return nil, fmt.Errorf("model weights: trailing data or bad checksum: %v", err)
	}
	m.x = NewExtractor(m.bits, int(m.window))
	return m, nil
}

// Load reads a model file from disk.
func Load(path string) (*Model, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("load model: %w", err)
	}
	defer f.Close()
	m, err := Read(f)
	if err != nil {
		return nil, fmt.Errorf("load model %s: %w", path, err)
	}
	return m, nil
}

// Default returns the model embedded in the binary, trained on the public
// corpus (see README in this directory for the command that rebuilds it).
func Default() (*Model, error) {
	m, err := Read(bytes.NewReader(defaultModel))
	if err != nil {
		return nil, fmt.Errorf("embedded model: %w", err)
	}
	return m, nil
}

func finite(f float32) bool {
	return !math.IsNaN(float64(f)) && !math.IsInf(float64(f), 0)
}

func finiteAll(fs []float64) bool {
	for _, f := range fs {
		if math.IsNaN(f) || math.IsInf(f, 0) {
			return false
		}
	}
	return true
}
