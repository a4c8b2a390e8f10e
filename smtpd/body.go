package smtpd

import "io"

// firstChunk and maxBodyChunk bound the buffers a message body is read
// into: the first, then each twice the last.
const (
	firstChunk   = 32 << 10
	maxBodyChunk = 4 << 20
)

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
// Bytes held in memory are paid for with res (holdFactor times) as they
// arrive. A spooled body holds nothing in memory while it is read: its
// reservation is returned, and its parse pays later.
//
// declared is the sender's SIZE, 0 if none: the first buffer fits it, with
// an eighth to spare (SIZE is an estimate), up to firstChunk, so a 5 KB
// message from an MTA that declares its size does not cost 32 KB.
func readBody(r io.Reader, res *reservation, sp *spool, declared int64) (*body, error) {
	var chunks [][]byte
	size := 0
	first := int64(firstChunk)
	if declared > 0 {
		first = min(first, max(declared+declared/8+512, 1<<10))
	}
	buf := make([]byte, 0, first)
	for {
		n, err := r.Read(buf[len(buf):cap(buf)])
		if n > 0 && (int64(size+n) > sp.threshold || !res.to(int64(size+n)*holdFactor)) {
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
	raw := buf
	if len(chunks) > 0 {
		raw = make([]byte, 0, size)
		for _, c := range chunks {
			raw = append(raw, c...)
		}
		raw = append(raw, buf...)
	}
	b := &body{}
	b.mem, b.bare = normalizeNewlines(raw)
	b.size = int64(len(b.mem))
	return b, nil
}

// eof is a reader at its end.
type eof struct{}

func (eof) Read([]byte) (int, error) { return 0, io.EOF }
