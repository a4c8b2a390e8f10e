package smtpd

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"syscall"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promauto"

	"github.com/mxgrid/mxgrid/fsperm"
	"github.com/mxgrid/mxgrid/scanner"
)

// errSpoolFull: the spool directory has too little free space for a big
// body; the sender hears 452 4.3.1 now rather than a failure mid-write.
var errSpoolFull = errors.New("spool directory low on free space")

// diskFull reports whether a spool write failed for want of space: the
// disk filled while the body arrived (smtp.spool_min_free is checked as
// the file is made), or the node's user ran out of quota. The sender
// hears the low-disk 452 4.3.1, not an unexplained local error.
func diskFull(err error) bool {
	return errors.Is(err, syscall.ENOSPC) || errors.Is(err, syscall.EDQUOT)
}

// spoolPrefix names spool files, so the start-up sweep removes only ours.
const spoolPrefix = "msg-"

// spool keeps message bodies past smtp.spool_threshold in files instead of
// memory: with 25 MB messages, memory would otherwise bound how many
// senders a node can serve at once.
type spool struct {
	dir       string
	threshold int64
	minFree   int64
	spooled   prometheus.Counter
	bytes     prometheus.Gauge
	log       *slog.Logger
}

// newSpool makes dir (0700) and removes the files a previous run left
// there: a node that died mid-transaction answered nothing, so their
// senders retry and the files are garbage.
func newSpool(dir string, threshold, minFree int64, reg prometheus.Registerer, log *slog.Logger) (*spool, error) {
	if err := fsperm.PrivateSubdir(dir, log); err != nil {
		return nil, fmt.Errorf("smtp spool %s: %w", dir, err)
	}
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil, fmt.Errorf("smtp spool: %w", err)
	}
	for _, e := range entries {
		if e.Type().IsRegular() && strings.HasPrefix(e.Name(), spoolPrefix) {
			if err := os.Remove(filepath.Join(dir, e.Name())); err != nil {
				return nil, fmt.Errorf("smtp spool: sweep: %w", err)
			}
			log.Info("removed a spool file left by an earlier run", "file", e.Name())
		}
	}
	f := promauto.With(reg)
	return &spool{
		dir: dir, threshold: threshold, minFree: minFree, log: log,
		spooled: f.NewCounter(prometheus.CounterOpts{
			Name: "mxgrid_smtp_spooled_messages_total",
			Help: "Message bodies larger than smtp.spool_threshold written to the spool directory instead of memory.",
		}),
		bytes: f.NewGauge(prometheus.GaugeOpts{
			Name: "mxgrid_smtp_spool_bytes",
			Help: "Bytes of received message bodies in the spool directory now (being scanned or relayed; a body still arriving is counted once complete).",
		}),
	}, nil
}

// create opens a new spool file (0600: os.CreateTemp's mode).
func (sp *spool) create() (*os.File, error) {
	if free, ok := freeBytes(sp.dir); ok && free < sp.minFree {
		return nil, errSpoolFull
	}
	f, err := os.CreateTemp(sp.dir, spoolPrefix+"*")
	if err != nil {
		return nil, fmt.Errorf("create spool file: %w", err)
	}
	sp.spooled.Inc()
	return f, nil
}

// body is one DATA body as the session holds it: bytes in memory up to the
// spool threshold, a spool file beyond it. Newlines are normalised either
// way (bare counts the bare CRs and LFs that were).
type body struct {
	mem  []byte
	file *os.File
	size int64
	bare int
	// high is every byte of a spooled body ORed together (newlineWriter).
	high byte
	sp   *spool
}

func (b *body) spooled() bool { return b.file != nil }

// eightBit reports whether the body, as received, holds a byte >= 0x80
// (one only in a header field we replace still counts). A spooled body was
// looked at as it was written, as reading its file again would cost a
// second pass over megabytes; one in memory (at most spool_threshold) is
// looked at only when asked, and the relay asks only for a customer's
// server without 8BITMIME, so most transactions pay for no pass at all.
func (b *body) eightBit() bool {
	if b.spooled() {
		return b.high >= 0x80
	}
	return has8Bit(b.mem)
}

// reader reads the body as received from offset off, from its file or
// memory, as the parsed message's Reader does, without the parse: what is
// relayed after the scan must not keep the scan's products alive.
func (b *body) reader(off int64) io.Reader {
	if b.spooled() {
		return scanner.ExactSection(b.file, off, b.size-off)
	}
	return bytes.NewReader(b.mem[min(off, int64(len(b.mem))):])
}

// held is what the body holds in memory: none of a spooled one.
func (b *body) held() int64 {
	if b.spooled() {
		return 0
	}
	return int64(len(b.mem))
}

// parse hands the body to the parser: a spooled one is read from its file
// and never loaded whole.
func (b *body) parse(p *scanner.Parser) *scanner.Message {
	if b.spooled() {
		return p.ParseReaderAt(b.file, b.size)
	}
	return p.Parse(b.mem)
}

// close removes the spool file: a body outlives no transaction.
func (b *body) close() {
	if b.file == nil {
		return
	}
	b.file.Close()
	if err := os.Remove(b.file.Name()); err != nil {
		b.sp.log.Warn("could not remove spool file", "file", b.file.Name(), "err", err)
	}
	b.sp.bytes.Sub(float64(b.size))
	b.file = nil
}

// spoolRest writes the body read so far (head) and the rest of r to a
// spool file, normalising newlines as normalizeNewlines does.
func (sp *spool) spoolRest(head [][]byte, r io.Reader) (*body, error) {
	f, err := sp.create()
	if err != nil {
		return nil, err
	}
	b := &body{file: f, sp: sp}
	bw := bufio.NewWriterSize(f, 64<<10)
	nw := &newlineWriter{w: bw}
	for _, c := range head {
		nw.Write(c)
	}
	_, err = io.Copy(nw, r)
	if err == nil {
		err = nw.flush()
	}
	if err == nil {
		err = bw.Flush()
	}
	b.size, b.bare, b.high = nw.n, nw.bare, nw.high
	sp.bytes.Add(float64(b.size))
	if err != nil {
		b.close()
		return nil, err
	}
	return b, nil
}

// newlineWriter is normalizeNewlines for a stream: it writes a bare CR or
// LF as CRLF and counts it. CRs at the end of one write may be followed
// by the LF that starts the next, so they are held until then (or flush).
type newlineWriter struct {
	w    *bufio.Writer
	crs  int // CRs seen and not yet written
	n    int64
	bare int
	// high ORs every byte written: the body's 8-bitness, found in the
	// pass this writer makes anyway.
	high byte
	err  error
}

func (nw *newlineWriter) Write(p []byte) (int, error) {
	high := nw.high
	for i := 0; i < len(p) && nw.err == nil; {
		if nw.crs > 0 {
			switch p[i] {
			case '\r':
				nw.crs++
				i++
				continue
			case '\n':
				nw.put("\r\n")
				nw.bare += nw.crs - 1
				nw.crs = 0
				i++
				continue
			}
			nw.bareCRs()
		}
		j := i
		for j < len(p) && p[j] != '\r' && p[j] != '\n' {
			high |= p[j]
			j++
		}
		nw.putBytes(p[i:j])
		if j == len(p) {
			break
		}
		if p[j] == '\r' {
			nw.crs = 1
		} else {
			nw.put("\r\n")
			nw.bare++
		}
		i = j + 1
	}
	nw.high = high
	if nw.err != nil {
		return 0, nw.err
	}
	return len(p), nil
}

// bareCRs writes the CRs held, which no LF followed: each ends a line.
func (nw *newlineWriter) bareCRs() {
	for range nw.crs {
		nw.put("\r\n")
	}
	nw.bare += nw.crs
	nw.crs = 0
}

// flush writes the CRs held at the end of the stream: they were bare.
func (nw *newlineWriter) flush() error {
	nw.bareCRs()
	return nw.err
}

func (nw *newlineWriter) put(s string) {
	if nw.err == nil {
		_, nw.err = nw.w.WriteString(s)
		nw.n += int64(len(s))
	}
}

func (nw *newlineWriter) putBytes(p []byte) {
	if nw.err == nil {
		_, nw.err = nw.w.Write(p)
		nw.n += int64(len(p))
	}
}
