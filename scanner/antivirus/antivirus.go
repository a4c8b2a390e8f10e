// Package antivirus is the built-in, always-on malware layer: the EICAR
// test file anywhere (including inside zip archives), a SHA-256 blocklist,
// dangerous attachment kinds recognised by content as well as by name, and
// zip bombs. It needs no daemon and no network, so it also runs offline
// (`mxgrid scan`) and keeps working when clamd is down.
//
// Findings: a virus name (EICAR, blocklisted hash, zip bomb) rejects with
// 554; a blocked attachment kind rejects by policy (Result.Reject); the rest
// (a name that lies about the content, encrypted or unscannable content) are
// weighted symbols.
package antivirus

import (
	"archive/tar"
	"archive/zip"
	"bufio"
	"bytes"
	"compress/flate"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"slices"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promauto"

	"github.com/mxgrid/mxgrid/scanner"
	"github.com/mxgrid/mxgrid/scanner/archdir"
	"github.com/mxgrid/mxgrid/scanner/unpack"
	"github.com/mxgrid/mxgrid/scanner/zipdir"
)

// Symbols the engine emits.
const (
	SymbolBlockedType   = "AV_BLOCKED_TYPE"       // explains a Reject; the rejection does the work
	SymbolNameMismatch  = "AV_NAME_TYPE_MISMATCH" // invoice.pdf that is a PE file
	SymbolEncrypted     = "AV_ENCRYPTED_ARCHIVE"  // members we cannot read: a classic way past scanners
	SymbolArchiveLimit  = "AV_ARCHIVE_LIMIT"      // archive nesting, member count or expansion limit reached, or a method not read
	SymbolArchiveBroken = "AV_ARCHIVE_BROKEN"     // an archive or member that does not decode
	SymbolPartUndecoded = "AV_PART_UNDECODABLE"   // a part whose transfer encoding is broken (truncated base64)
)

// Virus names the engine reports; a hash blocklist entry without a name
// is reported as virusHashPrefix plus the hash's first 12 hex digits.
const (
	VirusEICAR      = "Mxgrid.Test.EICAR"
	VirusZipBomb    = "Mxgrid.Heuristic.ZipBomb"
	virusHashPrefix = "Mxgrid.Hash."
)

const (
	maxDetailsPerSymbol  = 3    // details kept per symbol: enough to explain, short enough for a header
	maxHashBlocklistLine = 4096 // a longer line is not a hash entry
)

// Weights returns the default weight of every symbol the built-in engine
// emits (antivirus.weights overrides them).
func Weights() map[string]float64 {
	return map[string]float64{
		SymbolBlockedType:  0,
		SymbolNameMismatch: 4,
		SymbolEncrypted:    2,
		SymbolArchiveLimit: 6, // members never scanned: tag, as the parser's MIME_TOO_COMPLEX does

		SymbolArchiveBroken: 1,
		SymbolPartUndecoded: 1,
	}
}

// eicar is the EICAR test file's signature string, assembled so that the
// source file itself does not trip scanners on developer machines.
var eicar = []byte(`X5O!P%@AP[4\PZX54(P^)7CC)7}$` + "EICAR-STANDARD-" + "ANTIVIRUS-TEST-FILE!" + `$H+H*`)

// eicarSig finds it from its '^', a byte rare in mail.
var eicarSig = newSignature(eicar, '^')

// signature is a byte string searched for in whole messages and files.
// bytes.Index looks for the first byte of a long pattern and, when that
// byte is common ('X' starts every X- header field), falls back to a
// Rabin-Karp scan of every byte; here the search goes from one rare byte
// of the pattern to the next with IndexByte, and compares only there.
type signature struct {
	pattern []byte
	anchor  int // offset in pattern of the rare byte
}

func newSignature(pattern []byte, rare byte) signature {
	return signature{pattern: pattern, anchor: bytes.IndexByte(pattern, rare)}
}

// in reports whether b holds the signature (bytes.Contains(b, pattern)).
func (sig signature) in(b []byte) bool {
	n, rare := len(sig.pattern), sig.pattern[sig.anchor]
	// The anchor of a match lies in b[anchor : len(b)-n+anchor+1].
	for from, to := sig.anchor, len(b)-n+sig.anchor+1; from < to; {
		i := bytes.IndexByte(b[from:to], rare)
		if i < 0 {
			return false
		}
		start := from + i - sig.anchor
		if bytes.Equal(b[start:start+n], sig.pattern) {
			return true
		}
		from += i + 1
	}
	return false
}

// Check is the built-in engine as a scanner.Check. Safe for concurrent use.
type Check struct {
	cfg      Config
	blocked  map[string]bool
	weights  map[string]float64
	hashes   map[[sha256.Size]byte]string
	findings *prometheus.CounterVec
	pool     *pool
}

var _ scanner.Check = (*Check)(nil)

// New builds the engine from a validated config, loading the hash blocklist.
func New(cfg Config, reg prometheus.Registerer) (*Check, error) {
	c := &Check{cfg: cfg, blocked: set(cfg.BlockedTypes...), weights: Weights(), pool: newPool(cfg.ZipExpandedInFlight)}
	for k, v := range cfg.Weights {
		c.weights[k] = v
	}
	if cfg.HashBlocklist != "" {
		h, err := loadHashes(cfg.HashBlocklist)
		if err != nil {
			return nil, fmt.Errorf("antivirus: hash_blocklist: %w", err)
		}
		c.hashes = h
	}
	c.findings = promauto.With(reg).NewCounterVec(prometheus.CounterOpts{
		Name: "mxgrid_antivirus_findings_total",
		Help: "Messages the built-in engine refused, by finding (eicar, hash, zip_bomb, blocked_type).",
	}, []string{"finding"})
	promauto.With(reg).NewGaugeFunc(prometheus.GaugeOpts{
		Name: "mxgrid_antivirus_expanded_in_flight_bytes",
		Help: "Archive bytes decompressed by the built-in engine's scans in progress, against antivirus.zip_expanded_in_flight.",
	}, func() float64 { return float64(c.pool.Used()) })
	return c, nil
}

// Name implements scanner.Check.
func (c *Check) Name() string { return "antivirus" }

// Check implements scanner.Check. It fails when ctx ends first, and with
// scanner.ErrBusy when the node's scans hold zip_expanded_in_flight for
// longer than it may wait (half the time left to ctx's deadline).
func (c *Check) Check(ctx context.Context, _ *scanner.Envelope, msg *scanner.Message) (scanner.Result, error) {
	s := &scan{ctx: ctx, c: c, budget: budget{files: c.cfg.ZipMaxFiles, expanded: c.cfg.ZipMaxExpanded, pool: c.pool}}
	// Members are garbage once the scan returns.
	defer func() { c.pool.release(s.budget.held) }()
	// The raw message first: EICAR in an unencoded part, or hidden in a
	// part the parser cannot delimit, is still found. Then the parser's
	// leaves: the MIME tree is read once, under the scanner's limits, and
	// its structural findings are the parser's symbols.
	if found, err := rawContains(msg, eicarSig); err != nil {
		return scanner.Result{}, fmt.Errorf("antivirus: read message: %w", err)
	} else if found {
		s.setVirus(VirusEICAR, "eicar")
	}
	for i := range msg.Leaves {
		if s.done() {
			break
		}
		s.leaf(&msg.Leaves[i])
	}
	// Busy before ctx: a scan that waited for the pool until its context
	// ended must still tempfail, not fall to on_error (accept by default)
	// with its archive unscanned.
	if s.busy && s.virus == "" {
		return scanner.Result{}, fmt.Errorf("antivirus: %w: archives of other messages hold zip_expanded_in_flight (%d bytes)", scanner.ErrBusy, c.cfg.ZipExpandedInFlight)
	}
	if err := ctx.Err(); err != nil {
		return scanner.Result{}, fmt.Errorf("antivirus: %w", err)
	}
	return s.result(), nil
}

// scan is the state of one message's scan.
type scan struct {
	ctx     context.Context
	c       *Check
	budget  budget
	virus   string
	reject  string
	details map[string][]string
	// busy: an archive could not be expanded for want of the node's pool.
	busy bool
}

func (s *scan) done() bool { return s.virus != "" || s.busy || s.ctx.Err() != nil }

// reserve takes room in the node's pool for n bytes an archive declares
// it expands to, or marks the scan busy. It waits its turn for at most
// half the time left to its deadline, leaving the rest to scan what it
// gets; without a deadline it does not wait.
func (s *scan) reserve(n int64) bool {
	var wait context.Context
	var cancel context.CancelFunc
	if deadline, ok := s.ctx.Deadline(); ok {
		wait, cancel = context.WithTimeout(s.ctx, time.Until(deadline)/2)
	} else {
		wait, cancel = context.WithCancel(s.ctx)
		cancel()
	}
	defer cancel()
	if !s.budget.reserve(wait, n) {
		s.busy = true
		return false
	}
	return true
}

func (s *scan) setVirus(name, finding string) {
	if s.virus == "" {
		s.virus = name
		s.c.findings.WithLabelValues(finding).Inc()
	}
}

// symbol records a finding; a symbol appears once per message with its
// first few details.
func (s *scan) symbol(name, detail string) {
	if s.details == nil {
		// Made on the first finding: most messages have none.
		s.details = map[string][]string{}
	}
	d := s.details[name]
	if len(d) < maxDetailsPerSymbol && !slices.Contains(d, detail) {
		d = append(d, detail)
	}
	s.details[name] = d
}

func (s *scan) leaf(l *scanner.Leaf) {
	w := where(l.Path)
	if l.Err != nil {
		s.symbol(SymbolPartUndecoded, fmt.Sprintf("%s: %v", w, l.Err))
	}
	s.file(l.Filename, w, l.Data, 0)
	// A client may save the part under another of its names: each is
	// judged with the part's content.
	for _, name := range l.AltNames {
		s.classify(name, w, sniff(l.Data), false)
	}
}

// where names a position in the tree for symbol details.
func where(path string) string {
	if path == "" {
		return "body"
	}
	return "part " + path
}

// file scans one file: a MIME part (depth 0) or an archive member.
func (s *scan) file(name, where string, data []byte, depth int) {
	if s.done() {
		return
	}
	if eicarSig.in(data) {
		s.setVirus(VirusEICAR, "eicar")
		return
	}
	if s.c.hashes != nil {
		sum := sha256.Sum256(data)
		if v, ok := s.c.hashes[sum]; ok {
			s.setVirus(v, "hash")
			return
		}
	}
	ct := sniff(data)
	macros := false
	switch {
	case ct == ctOLE:
		macros = oleHasMacros(data)
	case ct == ctGzip, ct == ctBzip2, ct == ctXZ, ct == ctZstd:
		s.compressed(name, where, data, depth)
	case ct == ctTar:
		s.tarball(where, data, depth)
	case ct == ctRar:
		s.namedMembers(where, data, depth, archdir.ReadRAR)
	case ct == ctSevenZip:
		s.namedMembers(where, data, depth, func(data []byte, max int) archdir.Archive {
			return archdir.Read7z(data, max, s.budget.expanded)
		})
	case ct == ctZip:
		zr, err := s.openZip(data, describe(name, where))
		if err != nil {
			s.symbol(SymbolArchiveBroken, fmt.Sprintf("%s: %v", describe(name, where), err))
			s.localMembers(data, nil, where, depth)
			break
		}
		macros = ooxmlHasMacros(zr)
		s.archive(zr, int64(len(data)), where, depth)
		s.localMembers(data, zr, where, depth)
	case zipdir.HasEnd(data):
		// Zip readers (7-Zip, Windows Explorer, archive/zip) find an
		// archive from its end record, so one behind prepended bytes
		// opens for the recipient although its start is not "PK": a
		// junk byte before a zip hid its members from the scan. A type
		// the start does show (a PDF with a zip appended) stays its type.
		if zr, err := s.openZip(data, describe(name, where)); err == nil {
			if ct == ctUnknown {
				ct = ctZip
			}
			macros = ooxmlHasMacros(zr)
			s.archive(zr, int64(len(data)), where, depth)
		}
	}
	s.classify(name, where, ct, macros)
}

// classify applies the blocked kinds and the name/content consistency test.
// A name holding a colon is judged as mail clients save it too, the colon
// replaced (scanner.SavedColonName): read as an NTFS stream's alone,
// "RE: Rechnung.js" was a file "re" of no extension.
func (s *scan) classify(name, where string, ct contentType, macros bool) {
	kinds := kindsOf(name, ct, macros)
	lies := nameLies(name, ct)
	if saved, colon := scanner.SavedColonName(name); colon {
		for _, k := range kindsOf(saved, ct, macros) {
			if !slices.Contains(kinds, k) {
				kinds = append(kinds, k)
			}
		}
		lies = lies || nameLies(saved, ct)
	}
	for _, k := range kinds {
		if !s.c.blocked[k] {
			continue
		}
		s.symbol(SymbolBlockedType, k+": "+describe(name, where))
		if s.reject == "" {
			s.reject = fmt.Sprintf("attachment %s is not accepted (%s)", describe(name, where), strings.ReplaceAll(k, "_", " "))
			s.c.findings.WithLabelValues("blocked_type").Inc()
		}
	}
	if lies {
		s.symbol(SymbolNameMismatch, fmt.Sprintf("%q is %s", name, ct))
	}
}

func describe(name, where string) string {
	if name == "" {
		return where
	}
	return fmt.Sprintf("%q", name)
}

// archive scans the members of a zip archive of size bytes within the
// message's budget.
// Members are files in their own right: each goes through file, so an
// executable, EICAR or a nested archive inside a zip is found like one
// attached directly.
func (s *scan) archive(zr *zip.Reader, size int64, where string, depth int) {
	if s.tooDeep(where, depth) {
		return
	}
	// What the members the budget lets us read declare, taken before
	// the first is expanded.
	var need int64
	files := s.budget.files
	for _, f := range zr.File {
		if files == 0 || need >= s.budget.expanded {
			break
		}
		if f.FileInfo().IsDir() {
			continue
		}
		files--
		if f.Flags&0x1 == 0 {
			need += min(declared(f, size, s.c.cfg.ZipMaxRatio), s.budget.expanded)
		}
	}
	if !s.reserve(need) {
		return
	}
	for _, f := range zr.File {
		if f.FileInfo().IsDir() {
			continue
		}
		inner, readable, more := s.openMember(where, f.Name, zipdir.UnicodePath(f), f.Flags)
		if !more {
			return
		}
		if !readable {
			continue
		}
		data, err := readMember(f, size, &s.budget, s.c.cfg.ZipMaxRatio)
		if !s.member(f.Name, inner, data, err, depth) {
			return
		}
	}
}

// openMember takes a zip member's place in the message's budget (more is
// false when it is spent) and says whether its content can be read: bit 0
// of the general purpose flags is encryption (APPNOTE 4.4.4), and then
// the content is out of reach and only the name counts. alt is the name
// of its Unicode Path field, or "".
func (s *scan) openMember(where, name, alt string, flags uint16) (inner string, readable, more bool) {
	inner = where + "/" + name
	if !s.takeMember(inner) {
		return inner, false, false
	}
	if alt != "" {
		// The name the recipient's 7-Zip extracts it under; its
		// content is judged under the other.
		s.classify(alt, where+"/"+alt, ctUnknown, false)
	}
	if flags&0x1 != 0 {
		s.symbol(SymbolEncrypted, inner)
		s.classify(name, inner, ctUnknown, false)
		return inner, false, true
	}
	return inner, true, true
}

// localMembers scans the members of a zip that only their local headers
// give, those its central directory (zr, nil when it could not be read)
// does not list: 7-Zip and WinRAR show them (zipdir.Unlisted), so an
// .exe in a zip with no directory, or in the first of two zips put end to
// end, passed unread.
func (s *scan) localMembers(data []byte, zr *zip.Reader, where string, depth int) {
	unlisted := zipdir.Unlisted(data, zr, s.budget.files+1)
	if len(unlisted) == 0 || s.tooDeep(where, depth) {
		return
	}
	for _, lf := range unlisted {
		if strings.HasSuffix(lf.Name, "/") {
			continue
		}
		inner, readable, more := s.openMember(where, lf.Name, lf.UnicodePath(), lf.Flags)
		if !more {
			return
		}
		if !readable {
			continue
		}
		packed := lf.Packed()
		// What the header declares, taken like a directory's sizes.
		size := min(int64(lf.UncompressedSize), ratioLimit(int64(len(packed)), s.c.cfg.ZipMaxRatio))
		if !s.reserve(size) {
			return
		}
		var r io.Reader
		var fr io.ReadCloser
		switch lf.Method {
		case zip.Store:
			r = bytes.NewReader(packed)
		case zip.Deflate:
			fr = flateReaders.Get().(io.ReadCloser)
			fr.(flate.Resetter).Reset(bytes.NewReader(packed), nil)
			r = fr
		default:
			s.classify(lf.Name, inner, ctUnknown, false)
			continue
		}
		out, err := expand(r, int64(len(packed)), size, lf.Name, &s.budget, s.c.cfg.ZipMaxRatio)
		if fr != nil {
			flateReaders.Put(fr)
		}
		if !s.member(lf.Name, inner, out, err, depth) {
			return
		}
	}
}

// flateReaders are reused across archives and messages: a decompressor
// holds a 32 KiB window, and a message can be thousands of tiny
// archives, each opened before the member budget is looked at.
var flateReaders = sync.Pool{New: func() any { return flate.NewReader(bytes.NewReader(nil)) }}

// compressed scans the file a gzip, bzip2, xz or Zstandard file holds
// (Windows 11 and 7-Zip open .gz, .bz2, .xz and .zst, and the .tar.gz and
// the like they make): named as a gzip header says, or as the outer name
// without its extension. The decoder's memory is paid from the expansion
// budget (unpack.Open).
func (s *scan) compressed(name, where string, data []byte, depth int) {
	if s.tooDeep(where, depth) {
		return
	}
	bombAt := ratioLimit(int64(len(data)), s.c.cfg.ZipMaxRatio)
	st, err := unpack.Open(data, name, min(bombAt, s.budget.expanded), &s.budget.expanded)
	defer st.Close()
	if err != nil && st.Format == unpack.Gzip {
		s.symbol(SymbolArchiveBroken, fmt.Sprintf("%s: %v", where, err))
		return
	}
	inner := where + "/" + st.Name
	if !s.takeMember(inner) {
		return
	}
	if err != nil {
		s.member(st.Name, inner, nil, err, depth)
		return
	}
	// What it declares (gzip's trailer), within the ratio.
	size := min(st.Size, bombAt)
	if !s.reserve(size) {
		return
	}
	out, err := expand(st, int64(len(data)), size, st.Name, &s.budget, s.c.cfg.ZipMaxRatio)
	s.member(st.Name, inner, out, err, depth)
}

// tarball scans the regular files of a tar archive. Their bytes are
// copied out of data, within the expansion budget like any member's: a
// sparse entry expands.
func (s *scan) tarball(where string, data []byte, depth int) {
	if s.tooDeep(where, depth) {
		return
	}
	// Its members are copied out of data: at most its size, sparse
	// entries aside.
	if !s.reserve(int64(len(data))) {
		return
	}
	err := unpack.Files(bytes.NewReader(data), func(h *tar.Header, content io.Reader) bool {
		inner := where + "/" + h.Name
		if !s.takeMember(inner) {
			return false
		}
		out, err := expand(content, int64(len(data)), h.Size, h.Name, &s.budget, s.c.cfg.ZipMaxRatio)
		return s.member(h.Name, inner, out, err, depth) && !s.done()
	})
	if err != nil {
		s.symbol(SymbolArchiveBroken, fmt.Sprintf("%s: %v", where, err))
	}
}

// namedMembers judges the members of an archive the engine does not
// unpack (RAR, 7z: clamd does) by the names its headers give: Windows 11
// opens both, so invoice.exe in invoice.rar or invoice.7z is blocked as it
// is in a zip. Encrypted members, or names, are reported.
func (s *scan) namedMembers(where string, data []byte, depth int, read func([]byte, int) archdir.Archive) {
	if s.tooDeep(where, depth) {
		return
	}
	// One more than the budget, so that takeMember reports the limit.
	limit := s.budget.files + 1
	a := read(data, limit)
	// A compressed header is paid from the message's expansion budget
	// like a member: each 7z of 82 KB may decode 8 MB of header.
	s.budget.expanded -= min(a.Decoded, s.budget.expanded)
	if a.OverBudget {
		s.symbol(SymbolArchiveLimit, fmt.Sprintf("%s: more than %d bytes expanded", where, s.c.cfg.ZipMaxExpanded))
	}
	if a.HeadersEncrypted {
		s.symbol(SymbolEncrypted, where+": member names encrypted")
	}
	for _, e := range a.Entries {
		if e.Dir {
			continue
		}
		inner := where + "/" + e.Name
		if !s.takeMember(inner) {
			return
		}
		if e.Encrypted {
			s.symbol(SymbolEncrypted, inner)
		}
		s.classify(e.Name, inner, ctUnknown, false)
	}
	if a.Truncated && len(a.Entries) < limit {
		s.symbol(SymbolArchiveBroken, where+": archive headers not read whole")
	}
}

func (s *scan) tooDeep(where string, depth int) bool {
	if depth >= s.c.cfg.ZipMaxDepth {
		s.symbol(SymbolArchiveLimit, fmt.Sprintf("%s: archives nested deeper than %d", where, s.c.cfg.ZipMaxDepth))
		return true
	}
	return false
}

// takeMember counts a member against the message's member budget,
// reporting false (and the limit) when it is spent or the scan is over.
func (s *scan) takeMember(inner string) bool {
	if s.done() {
		return false
	}
	if s.budget.files <= 0 {
		s.symbol(SymbolArchiveLimit, fmt.Sprintf("%s: more than %d archive members", inner, s.c.cfg.ZipMaxFiles))
		return false
	}
	s.budget.files--
	return true
}

// member scans an archive member as a file, given what expanding it
// returned, and reports whether the archive's walk may go on.
func (s *scan) member(name, inner string, data []byte, err error, depth int) bool {
	switch {
	case errors.Is(err, errPoolSpent):
		s.busy = true
		return false
	case errors.Is(err, errZipBomb):
		s.setVirus(VirusZipBomb, "zip_bomb")
		return false
	case errors.Is(err, unpack.ErrBudget):
		s.symbol(SymbolArchiveLimit, fmt.Sprintf("%s: more than %d bytes expanded", inner, s.c.cfg.ZipMaxExpanded))
		s.file(name, inner, data, depth+1)
		return false
	case errors.Is(err, zip.ErrAlgorithm), errors.Is(err, unpack.ErrUnscannable):
		// A method the recipient's Explorer or 7-Zip reads (Deflate64,
		// an xz filter) and we do not: its content, an archive with an
		// executable perhaps, is never scanned, as past a limit.
		s.symbol(SymbolArchiveLimit, fmt.Sprintf("%s: %v", inner, err))
	case err != nil:
		s.symbol(SymbolArchiveBroken, fmt.Sprintf("%s: %v", inner, err))
	}
	s.file(name, inner, data, depth+1)
	return true
}

func (s *scan) result() scanner.Result {
	var r scanner.Result
	r.Virus = s.virus
	if r.Virus == "" {
		r.Reject = s.reject
	}
	names := make([]string, 0, len(s.details))
	for n := range s.details {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		r.Symbols = append(r.Symbols, scanner.Symbol{Name: n, Score: s.c.weights[n], Detail: strings.Join(s.details[n], "; ")})
	}
	return r
}

// loadHashes reads "hex-sha256 [name]" lines; '#' starts a comment.
func loadHashes(path string) (map[[sha256.Size]byte]string, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	hashes := make(map[[sha256.Size]byte]string)
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 0, 256), maxHashBlocklistLine)
	n := 1
	for ; sc.Scan(); n++ {
		line, _, _ := strings.Cut(sc.Text(), "#")
		fields := strings.Fields(line)
		if len(fields) == 0 {
			continue
		}
		b, err := hex.DecodeString(fields[0])
		if err != nil || len(b) != sha256.Size {
			return nil, fmt.Errorf("%s:%d: %q is not a SHA-256 in hex", path, n, fields[0])
		}
		name := virusHashPrefix + fields[0][:12]
		if len(fields) > 1 {
			name = fields[1]
		}
		hashes[[sha256.Size]byte(b)] = name
	}
	if err := sc.Err(); errors.Is(err, bufio.ErrTooLong) {
		// bufio's "token too long" named neither the line nor the bound.
		return nil, fmt.Errorf("%s:%d: a line over %d bytes is not a hash entry (is it the right file?)", path, n, maxHashBlocklistLine)
	} else if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return hashes, nil
}

// rawContains reports whether the message as received holds sig: in
// place when it is in memory, streamed when it was spooled.
func rawContains(msg *scanner.Message, sig signature) (bool, error) {
	if msg.Raw != nil {
		return sig.in(msg.Raw), nil
	}
	return containsStream(msg.Reader(0), sig)
}

// containsStream reports whether r holds sig, reading it in chunks that
// overlap by len(pattern)-1 bytes so a match across two reads is found: a
// spooled message is searched without being loaded.
func containsStream(r io.Reader, sig signature) (bool, error) {
	buf := make([]byte, 0, 64<<10)
	for {
		n, err := r.Read(buf[len(buf):cap(buf)])
		buf = buf[:len(buf)+n]
		if sig.in(buf) {
			return true, nil
		}
		if err == io.EOF {
			return false, nil
		}
		if err != nil {
			return false, err
		}
		if keep := len(sig.pattern) - 1; len(buf) > keep && len(buf) == cap(buf) {
			buf = buf[:copy(buf, buf[len(buf)-keep:])]
		}
	}
}
