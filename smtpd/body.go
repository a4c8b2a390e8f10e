package smtpd

import (
	"bytes"
	"io"
	"sync"
)

// firstChunk and maxBodyChunk bound the buffers a message body is read
// into: the first, then each twice the last.
const (
	firstChunk   = 32 << 10
	maxBodyChunk = 4 << 20
)

// firstBuffers are reused for every body's first chunk: most mail fits in
// it, and is then copied out at its own size. A new 32 KiB buffer per
// message was a quarter of all bytes a node allocated on 5 KB mail (and
// sizing it from the sender's SIZE only helps senders that declare one).
var firstBuffers = sync.Pool{New: func() any { b := make([]byte, firstChunk); return &b }}

// readBody reads a DATA body: in memory while it stays within the spool's
// threshold and the memory budget can pay for it, into a spool file once
// it is larger or the budget is spent (a spooled body costs no memory
// while it arrives; its scan waits for the budget instead).
// Unlike io.ReadAll, which joins its chunks into one right-sized copy even
// when the read fails, it joins them only when the whole body arrived: a
// message over max_message_bytes is then refused having cost the limit
// once, not twice (measured: a 50 MB message at the 25 MiB limit grew the
// heap by 56 MB with io.ReadAll).
//
// Bytes held in memory are paid for with res (factor times) as they
// arrive. A spooled body holds nothing in memory while it is read: its
// reservation is returned, and its parse pays later.
//
// The body returned never shares memory with the pooled first buffer.
func readBody(r io.Reader, res *reservation, factor int64, sp *spool) (*body, error) {
	first := firstBuffers.Get().(*[]byte)
	defer firstBuffers.Put(first)
	var chunks [][]byte
	size := 0
	buf := (*first)[:0]
	for {
		n, err := r.Read(buf[len(buf):cap(buf)])
		if n > 0 && (int64(size+n) > sp.threshold || !res.to(int64(size+n)*factor)) {
			rest := r
			switch {
			case err == io.EOF:
				rest = eof{}
			case err != nil:
				return nil, err
			}
			b, err := sp.spoolRest(append(chunks, buf[:len(buf)+n]), rest)
			res.to(0)
			return b, err
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
	raw, pooled := buf, len(chunks) == 0
	if !pooled {
		raw = make([]byte, 0, size)
		for _, c := range chunks {
			raw = append(raw, c...)
		}
		raw = append(raw, buf...)
	}
	b := &body{}
	b.mem, b.bare = normalizeNewlines(raw)
	if pooled && b.bare == 0 {
		b.mem = bytes.Clone(b.mem) // still the pooled buffer
	}
	b.size = int64(len(b.mem))
	if b.bare > 0 && (b.size > sp.threshold || !res.to(b.size*factor)) {
		// Normalising grew the body (a bare LF becomes CRLF: up to twice
		// its size), and the budget paid for it as received. Held in
		// memory unpaid for, bodies of bare LFs held twice what
		// memory_budget allows; it goes where any body goes that the
		// threshold or the budget cannot hold.
		sb, err := sp.spoolRest([][]byte{b.mem}, eof{})
		res.to(0)
		if err != nil {
			return nil, err
		}
		sb.bare = b.bare // spoolRest finds none left to count
		return sb, nil
	}
	return b, nil
}

// eof is a reader at its end.
type eof struct{}

func (eof) Read([]byte) (int, error) { return 0, io.EOF }
