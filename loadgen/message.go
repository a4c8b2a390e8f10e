package loadgen

import (
	"bytes"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"github.com/mxgrid/mxgrid/internal/democorpus"
)

// IDHeader carries each message's id from the sender to the sink. The sink
// counts ids, so a lost or duplicated message shows up by name.
const IDHeader = "X-Loadgen-Id"

// template is a message without its id, already in wire form: CRLF line
// endings, dot-stuffed, without the final ".\r\n". The id header is written
// in front of it for each message, so a 5 KB message costs no copying.
type template []byte

// wire returns raw in SMTP DATA form: every line ending CRLF (bare LF and
// bare CR both become CRLF, as an MTA's cleanup would) and lines starting
// with a dot doubled (RFC 5321 §4.5.2).
func wire(raw []byte) template {
	raw = bytes.ReplaceAll(raw, []byte("\r\n"), []byte("\n"))
	raw = bytes.ReplaceAll(raw, []byte("\r"), []byte("\n"))
	raw = bytes.TrimSuffix(raw, []byte("\n"))
	var b bytes.Buffer
	b.Grow(len(raw) + len(raw)/40 + 2)
	for line := range bytes.SplitSeq(raw, []byte("\n")) {
		if len(line) > 0 && line[0] == '.' {
			b.WriteByte('.')
		}
		b.Write(line)
		b.WriteString("\r\n")
	}
	return b.Bytes()
}

// words is a business-like vocabulary for synthetic bodies: the load test
// measures the whole pipeline on mail it delivers, so the text must not look
// like spam to the model and rules.
var words = strings.Fields(`the report for this quarter is attached please review the numbers
before our meeting on thursday we agreed to move the deadline for the project plan and the
budget draft the team will send the updated schedule after lunch let me know if you have
questions about the invoice or the contract thanks for your help with the release notes
and the customer feedback summary regards from the office`)

// synthetic builds a plain-text message of about size bytes. Bodies differ
// by seed so every message is scanned as a message of its own.
func synthetic(size int, id string, seed uint64, from, to string) template {
	rng := rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15))
	var b strings.Builder
	fmt.Fprintf(&b, "From: Load Generator <%s>\r\nTo: <%s>\r\nSubject: status update %d\r\n", from, to, seed)
	fmt.Fprintf(&b, "Message-ID: <%s@loadgen.test>\r\nDate: %s\r\nMIME-Version: 1.0\r\nContent-Type: text/plain; charset=us-ascii\r\n\r\n",
		id, time.Date(2026, 11, 22, 10, 0, 0, 0, time.UTC).Format(time.RFC1123Z))
	line := 0
	for b.Len() < size {
		w := words[rng.IntN(len(words))]
		if line+len(w)+1 > 72 {
			b.WriteString("\r\n")
			line = 0
		} else if line > 0 {
			b.WriteByte(' ')
			line++
		}
		b.WriteString(w)
		line += len(w)
	}
	b.WriteString("\r\n")
	return wire([]byte(b.String()))
}

// loadCorpus reads every regular file under dir (sorted, so runs repeat) as
// one message each.
func loadCorpus(dir string) ([]template, error) {
	var paths []string
	err := filepath.WalkDir(dir, func(path string, d os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.Type().IsRegular() {
			paths = append(paths, path)
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("corpus %s: %w", dir, err)
	}
	sort.Strings(paths)
	out := make([]template, 0, len(paths))
	for _, p := range paths {
		raw, err := os.ReadFile(p)
		if err != nil {
			return nil, fmt.Errorf("corpus: %w", err)
		}
		// A corpus taken from mbox-style archives may carry our header from
		// an earlier run; two ids would make the sink count the wrong one.
		// Its mbox "From " lines go as well: the node reads mail received
		// by SMTP as sent, where such a line breaks the header.
		out = append(out, wire(dropHeader(democorpus.StripMboxFrom(raw), IDHeader)))
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("corpus %s: no files", dir)
	}
	return out, nil
}

// dropHeader removes every field named name (and its continuation lines)
// from the header of raw.
func dropHeader(raw []byte, name string) []byte {
	prefix := strings.ToLower(name) + ":"
	var out bytes.Buffer
	inHeader, skipping := true, false
	for line := range bytes.SplitAfterSeq(raw, []byte("\n")) {
		if inHeader {
			trimmed := bytes.TrimRight(line, "\r\n")
			if len(trimmed) == 0 {
				inHeader = false
			} else if skipping && (trimmed[0] == ' ' || trimmed[0] == '\t') {
				continue
			} else {
				skipping = strings.HasPrefix(strings.ToLower(string(trimmed)), prefix)
				if skipping {
					continue
				}
			}
		}
		out.Write(line)
	}
	return out.Bytes()
}

// HeaderID returns the value of the id header in a message's header
// section, or "" when it has none.
func HeaderID(msg []byte) string {
	prefix := strings.ToLower(IDHeader) + ":"
	for len(msg) > 0 {
		i := bytes.IndexByte(msg, '\n')
		line := msg
		if i >= 0 {
			line, msg = msg[:i], msg[i+1:]
		} else {
			msg = nil
		}
		line = bytes.TrimRight(line, "\r")
		if len(line) == 0 {
			return ""
		}
		if len(line) > len(prefix) && strings.EqualFold(string(line[:len(prefix)]), prefix) {
			return strings.TrimSpace(string(line[len(prefix):]))
		}
	}
	return ""
}
