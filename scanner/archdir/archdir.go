// Package archdir lists the members of archives the built-in engine does
// not unpack, RAR (versions 1.5 to 4 and 5) and 7z, from their headers,
// without decompressing any member.
//
// Windows 11 opens RAR and 7z archives itself, so a lure mailed as
// invoice.rar or invoice.7z holding invoice.exe is one double click from
// running; the names are what a scanner that cannot unpack them can judge.
// RAR keeps names in plain headers unless the archive encrypts them; 7-Zip
// compresses its header with LZMA, which is decoded (bounded) to read them.
package archdir

// Entry is one member.
type Entry struct {
	Name      string
	Dir       bool
	Encrypted bool // its data is encrypted: out of any scanner's reach
}

// Archive is what the headers say.
type Archive struct {
	Entries []Entry
	// HeadersEncrypted: the names themselves are encrypted (rar -hp,
	// 7z -mhe).
	HeadersEncrypted bool
	// Truncated: more members than asked for, or headers that could not
	// be read whole.
	Truncated bool
	// Decoded is how many bytes of compressed header were decoded: 7z's,
	// within what Read7z was allowed; OverBudget when more were needed.
	Decoded    int64
	OverBudget bool
}

// reader reads an archive's header fields; a read past the end sets bad,
// and later reads return zero values.
type reader struct {
	b   []byte
	bad bool
}

func (r *reader) byte() byte {
	if len(r.b) == 0 {
		r.bad = true
		return 0
	}
	c := r.b[0]
	r.b = r.b[1:]
	return c
}

func (r *reader) skip(n uint64) []byte {
	if n > uint64(len(r.b)) {
		r.bad = true
		return nil
	}
	s := r.b[:n]
	r.b = r.b[n:]
	return s
}
