package eval

import (
	"bufio"
	"bytes"
	"net/mail"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/emersion/go-message/textproto"
)

// MessageTime is when a message was written, for ordering a corpus in
// time: its Date header, unless that is missing, unparsable or more than a
// week away from the topmost Received stamp (spamware forges dates), in
// which case the Received stamp. Without either it reports false.
func MessageTime(raw []byte) (time.Time, bool) {
	if bytes.HasPrefix(raw, []byte("From ")) {
		if i := bytes.IndexByte(raw, '\n'); i >= 0 {
			raw = raw[i+1:]
		}
	}
	h, err := textproto.ReadHeader(bufio.NewReader(bytes.NewReader(raw)))
	if err != nil && h.Len() == 0 {
		return time.Time{}, false
	}
	date, dateErr := mail.ParseDate(strings.TrimSpace(h.Get("Date")))
	var recv time.Time
	recvOK := false
	if r := h.Get("Received"); r != "" {
		if i := strings.LastIndexByte(r, ';'); i >= 0 {
			if t, err := mail.ParseDate(strings.TrimSpace(r[i+1:])); err == nil {
				recv, recvOK = t, true
			}
		}
	}
	switch {
	case dateErr == nil && (!recvOK || absDuration(date.Sub(recv)) <= 7*24*time.Hour):
		return date, true
	case recvOK:
		return recv, true
	}
	return time.Time{}, false
}

func absDuration(d time.Duration) time.Duration {
	if d < 0 {
		return -d
	}
	return d
}

// temporalSplit marks the latest fraction of each class and corpus part
// (Subset: easy and hard ham apart) as the test set (fold 0) and the rest
// as training only (fold -1). Messages are ordered by MessageTime; those
// without one sort by file name after the dated ones. Splitting each part
// on its own keeps the test set's mix the corpus' even when the parts were
// collected over different periods (hard ham is older than easy ham).
func temporalSplit(samples []Sample, frac float64) (folds []int, times []time.Time) {
	folds = make([]int, len(samples))
	times = make([]time.Time, len(samples))
	dated := make([]bool, len(samples))
	for i, s := range samples {
		times[i], dated[i] = MessageTime(s.Raw)
	}
	groups := map[string][]int{}
	var keys []string
	for i, s := range samples {
		k := strconv.FormatBool(s.Spam) + "/" + Subset(s.Path)
		if _, ok := groups[k]; !ok {
			keys = append(keys, k)
		}
		groups[k] = append(groups[k], i)
	}
	for _, k := range keys {
		idx := groups[k]
		slices.SortStableFunc(idx, func(a, b int) int {
			switch {
			case dated[a] && dated[b]:
				if c := times[a].Compare(times[b]); c != 0 {
					return c
				}
			case dated[a] != dated[b]:
				if dated[a] {
					return -1
				}
				return 1
			}
			return strings.Compare(filepath.Base(samples[a].Path), filepath.Base(samples[b].Path))
		})
		cut := len(idx) - int(frac*float64(len(idx))+0.5)
		for n, i := range idx {
			if n < cut {
				folds[i] = -1
			}
		}
	}
	return folds, times
}

// Subset names the part of the corpus a message file belongs to: its file
// name up to the first "-" that is followed by a digit or the first ".",
// for example "easy-ham" for easy-ham-1.00001.7c53...eml. The public corpus
// names its files this way; other names give "".
func Subset(path string) string {
	base := filepath.Base(path)
	for i := 0; i < len(base); i++ {
		if base[i] == '.' || (base[i] == '-' && i+1 < len(base) && base[i+1] >= '0' && base[i+1] <= '9') {
			if i == 0 {
				return ""
			}
			return base[:i]
		}
	}
	return ""
}
