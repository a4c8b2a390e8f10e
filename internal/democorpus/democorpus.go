// Package democorpus is the sample of public spam and ham (from the
// SpamAssassin public corpus, as in testdata/corpus) that `mxgrid demo`
// replays. It is a copy because go:embed cannot reach testdata/ from here,
// and the binary must carry it: the demo runs on a machine with nothing
// but the binary.
package democorpus

import (
	"embed"
	"fmt"
	"io/fs"
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
			m := Message{Name: e.Name(), Spam: kind == "spam", Data: data}
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
