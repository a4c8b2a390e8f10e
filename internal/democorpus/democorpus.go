// Package democorpus is the sample of public spam and ham (from the
// SpamAssassin public corpus, as in testdata/corpus) that `mxgrid demo`
// replays. It is a copy because go:embed cannot reach testdata/ from here,
// and the binary must carry it: the demo runs on a machine with nothing
// but the binary.
package democorpus

import (
	"bytes"
	"embed"
	"fmt"
	"io/fs"
	"net/netip"
	"path"
	"sort"
)

//go:embed mail/spam/*.eml mail/ham/*.eml
var files embed.FS

// Message is one sample message as it was received, headers included.
type Message struct {
	Name string // file name, for output
	Spam bool
	Data []byte
}

// Messages returns every sample, spam and ham interleaved so that a replay
// from the start shows both at once, in a fixed order.
func Messages() ([]Message, error) {
	var spam, ham []Message
	for _, kind := range []string{"spam", "ham"} {
		entries, err := fs.ReadDir(files, path.Join("mail", kind))
		if err != nil {
			return nil, fmt.Errorf("democorpus: %w", err)
		}
		sort.Slice(entries, func(i, j int) bool { return entries[i].Name() < entries[j].Name() })
		for _, e := range entries {
			data, err := files.ReadFile(path.Join("mail", kind, e.Name()))
			if err != nil {
				return nil, fmt.Errorf("democorpus: %w", err)
			}
			m := Message{Name: e.Name(), Spam: kind == "spam", Data: StripMboxFrom(data)}
			if m.Spam {
				spam = append(spam, m)
			} else {
				ham = append(ham, m)
			}
		}
	}
	out := make([]Message, 0, len(spam)+len(ham))
	for i := 0; i < max(len(spam), len(ham)); i++ {
		if i < len(spam) {
			out = append(out, spam[i])
		}
		if i < len(ham) {
			out = append(out, ham[i])
		}
	}
	return out, nil
}

// StripMboxFrom removes the "From sender date" line that mail archives put
// before each message: it is not a header field, a real sender's MTA
// would never send it, and a node reads it as a broken header.
func StripMboxFrom(data []byte) []byte {
	if !bytes.HasPrefix(data, []byte("From ")) {
		return data
	}
	if i := bytes.IndexByte(data, '\n'); i >= 0 {
		return data[i+1:]
	}
	return data
}

// TrustedRelays are the sample's own relays: loopback, and the POP server
// the corpus's collector fetched its mail from (193.120.211.219,
// webnote.net). Looking past them, a message's source is where it entered
// the collector's mailbox, as the corpus defines it.
func TrustedRelays() []netip.Prefix {
	return []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8"), netip.MustParsePrefix("::1/128"), netip.MustParsePrefix("193.120.211.219/32")}
}
