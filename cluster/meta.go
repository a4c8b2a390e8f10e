package cluster

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"time"
	"unicode/utf8"

	"github.com/hashicorp/memberlist"
)

// metaVersion1 is the first byte of every encoded meta. Version 1 fields are
// only ever appended to: a decoder reads the fields it knows and ignores
// trailing bytes, so a newer node's meta still shows on an older node
// during a rolling upgrade. An incompatible layout takes a new version byte.
const metaVersion1 = 1

// Flag bits of the meta's second byte.
const (
	flagReady    = 1 << iota // the node's health registry says OK or Degraded
	flagDraining             // Drain was called: stop sending it mail
	flagLeaving              // Leave was called: its disappearance is a departure, not a failure
)

// Per-field caps applied before the overall limit; they keep one long value
// from crowding out the others and make the worst case easy to reason about:
// 4 capped strings, the SMTP host name and the fixed fields take at most
// 4*(2+64) + (2+128) + 2 + 5*10 = 446 bytes, under memberlist's 512.
const (
	maxLabelLen  = 64
	maxReasonLen = 120
	// maxAddrLen bounds HTTPAddr; a longer one is dropped, not truncated,
	// since a cut address would point somewhere else.
	maxAddrLen = 64
	// maxHostLen bounds SMTPHostname, dropped like HTTPAddr when longer:
	// a node whose name does not fit is recognised by its addresses only.
	maxHostLen = 128
)

// meta is what a node says about itself in gossip (memberlist's node meta).
// The node's name and address travel in memberlist's own fields.
type meta struct {
	Provider      string
	Region        string
	Version       string
	Started       time.Time // second precision on the wire
	Ready         bool
	Draining      bool
	Leaving       bool
	Reasons       []string // why the node is not ready or degraded
	OmittedReason int      // reasons dropped to fit the size limit
	Load          float64  // messages per second over the last minute
	ConfigVersion uint64
	// HTTPAddr is the node's bound management listener (host:port,
	// http.management_listen), where its /metrics answers, for Prometheus
	// service discovery. Appended after Reasons: older nodes ignore it.
	HTTPAddr string
	// SMTPHostname is the node's smtp.hostname, the name its greeting and
	// EHLO reply give: a relay that meets it downstream has reached a
	// member of its own cluster (a loop). Appended after HTTPAddr.
	SMTPHostname string
}

// encode returns m in at most limit bytes, truncating labels and reasons at
// rune boundaries and dropping reasons from the end (counted in
// OmittedReason) until it fits. It never returns more than limit bytes
// unless limit is below the size of an all-empty meta (about 50 bytes),
// which memberlist's fixed 512 never is.
func (m meta) encode(limit int) []byte {
	m.Provider = truncate(m.Provider, maxLabelLen)
	m.Region = truncate(m.Region, maxLabelLen)
	m.Version = truncate(m.Version, maxLabelLen)
	if len(m.HTTPAddr) > maxAddrLen {
		m.HTTPAddr = ""
	}
	if len(m.SMTPHostname) > maxHostLen {
		m.SMTPHostname = ""
	}
	reasons := make([]string, len(m.Reasons))
	for i, r := range m.Reasons {
		reasons[i] = truncate(r, maxReasonLen)
	}
	m.Reasons = reasons
	b := m.marshal()
	for len(b) > limit && len(m.Reasons) > 0 {
		m.Reasons = m.Reasons[:len(m.Reasons)-1]
		m.OmittedReason++
		b = m.marshal()
	}
	return b
}

func (m meta) marshal() []byte {
	b := make([]byte, 0, 128)
	b = append(b, metaVersion1)
	var flags byte
	if m.Ready {
		flags |= flagReady
	}
	if m.Draining {
		flags |= flagDraining
	}
	if m.Leaving {
		flags |= flagLeaving
	}
	b = append(b, flags)
	b = binary.AppendUvarint(b, uint64(max(m.Started.Unix(), 0)))
	b = binary.AppendUvarint(b, m.ConfigVersion)
	// Load in hundredths of a message per second: precise enough to compare
	// nodes, and an integer keeps the encoding byte-stable.
	b = binary.AppendUvarint(b, uint64(math.Round(min(max(m.Load, 0), 1e12)*100)))
	b = appendString(b, m.Provider)
	b = appendString(b, m.Region)
	b = appendString(b, m.Version)
	b = binary.AppendUvarint(b, uint64(m.OmittedReason))
	b = binary.AppendUvarint(b, uint64(len(m.Reasons)))
	for _, r := range m.Reasons {
		b = appendString(b, r)
	}
	b = appendString(b, m.HTTPAddr)
	return appendString(b, m.SMTPHostname)
}

func appendString(b []byte, s string) []byte {
	b = binary.AppendUvarint(b, uint64(len(s)))
	return append(b, s...)
}

var errShortMeta = errors.New("truncated")

// decodeMeta parses meta received from another node. The bytes come from the
// network: every length is checked, and nothing in them can make it panic
// (see FuzzDecodeMeta).
func decodeMeta(b []byte) (meta, error) {
	var m meta
	// Our encoder never exceeds memberlist's limit (memberlist panics
	// above it), but memberlist does not check the meta it receives.
	if len(b) > memberlist.MetaMaxSize {
		return m, fmt.Errorf("node meta: %d bytes, over memberlist's %d", len(b), memberlist.MetaMaxSize)
	}
	if len(b) < 2 {
		return m, fmt.Errorf("node meta: %w (%d bytes)", errShortMeta, len(b))
	}
	if b[0] != metaVersion1 {
		return m, fmt.Errorf("node meta: unknown version %d", b[0])
	}
	flags := b[1]
	m.Ready = flags&flagReady != 0
	m.Draining = flags&flagDraining != 0
	m.Leaving = flags&flagLeaving != 0
	d := decoder{b: b[2:]}
	m.Started = time.Unix(int64(min(d.uvarint(), math.MaxInt64)), 0).UTC()
	m.ConfigVersion = d.uvarint()
	m.Load = float64(d.uvarint()) / 100
	m.Provider = d.string()
	m.Region = d.string()
	m.Version = d.string()
	m.OmittedReason = int(min(d.uvarint(), math.MaxInt32))
	n := d.uvarint()
	// Each reason takes at least one byte, which bounds the allocation by
	// the input's size rather than by a count an attacker chose.
	if n > uint64(len(d.b)) {
		return meta{}, fmt.Errorf("node meta: %d reasons in %d bytes", n, len(d.b))
	}
	for range n {
		m.Reasons = append(m.Reasons, d.string())
	}
	// Absent in metas from nodes that predate it.
	if d.err == nil && len(d.b) > 0 {
		m.HTTPAddr = d.string()
	}
	if d.err == nil && len(d.b) > 0 {
		m.SMTPHostname = d.string()
	}
	if d.err != nil {
		return meta{}, fmt.Errorf("node meta: %w", d.err)
	}
	return m, nil
}

// decoder reads uvarints and strings, remembering the first error so the
// caller checks once.
type decoder struct {
	b   []byte
	err error
}

func (d *decoder) uvarint() uint64 {
	if d.err != nil {
		return 0
	}
	v, n := binary.Uvarint(d.b)
	if n <= 0 {
		d.err = errShortMeta
		return 0
	}
	d.b = d.b[n:]
	return v
}

func (d *decoder) string() string {
	n := d.uvarint()
	if d.err != nil {
		return ""
	}
	if n > uint64(len(d.b)) {
		d.err = errShortMeta
		return ""
	}
	s := string(d.b[:n])
	d.b = d.b[n:]
	return s
}

// truncate shortens s to at most n bytes (n > 3) without splitting a UTF-8
// sequence, marking the cut with "…".
func truncate(s string, n int) string {
	const ellipsis = "…"
	if len(s) <= n {
		return s
	}
	cut := n - len(ellipsis)
	for cut > 0 && !utf8.RuneStart(s[cut]) {
		cut--
	}
	return s[:cut] + ellipsis
}
