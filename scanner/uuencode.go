package scanner

import (
	"bytes"
)

// uuBeginName reads line as the first line of a uuencoded file: "begin
// <mode> <name>", the name possibly empty, as Thunderbird reads it
// (MimeUntypedText_uu_begin_line_p): a file with none is an attachment
// to the recipient all the same. It reads what the pattern
// ^begin [0-7]{3,4} ([^\r\n]*?)\r?$ captures, by hand: Go's regexp
// read a line at 30 ns a byte, 0.6 s of CPU for a line of 20 MB.
func uuBeginName(line []byte) ([]byte, bool) {
	rest, ok := bytes.CutPrefix(line, []byte("begin "))
	if !ok {
		return nil, false
	}
	n := 0
	for n < len(rest) && n < 5 && '0' <= rest[n] && rest[n] <= '7' {
		n++
	}
	if n < 3 || n > 4 || n == len(rest) || rest[n] != ' ' {
		return nil, false
	}
	return lineRest(rest[n+1:])
}

// lineRest is what ([^\r\n]*?)\r?$ captures of b, the rest of a line.
func lineRest(b []byte) ([]byte, bool) {
	b = bytes.TrimSuffix(b, []byte("\r"))
	return b, bytes.IndexAny(b, "\r\n") < 0
}

// embeddedFile is a file carried inside a part's content: uuencoded in a
// text part, or in a TNEF (winmail.dat) attachment.
type embeddedFile struct {
	name string
	data []byte
}

// uuEncodings are the Content-Transfer-Encoding names mail readers decode
// as uuencode or yEnc (none is in RFC 2045): Thunderbird's (mimeleaf.cpp)
// all. Without "uue" and "x-yencode", which go-message does not know
// either, a zip so encoded was scanned as its encoded text.
var uuEncodings = map[string]bool{"x-uuencode": true, "uuencode": true, "x-uue": true, "uue": true, "x-yencode": true}

// sunAttachmentType is Sun MailTool's attachments in one part, which
// Thunderbird reads (mimesun.cpp): its uuencoded ones are found as in text.
const sunAttachmentType = "x-sun-attachment"

// maxTextFiles bounds the files of one encoding (uuencode, yEnc, BinHex)
// decoded from one text part. The decoders find one more when there are
// more, for the walk to report what it did not keep (addDecoded).
const maxTextFiles = 8

// uuFiles finds the uuencoded files in text, decoding at most budget bytes
// in all. Mail clients (Thunderbird among them) show such a block as an
// attachment and ClamAV decodes it, so a file hidden in a text part this
// way must be scanned like an attached one. Decoding is lenient, as the
// clients' is: a line shorter than its length byte says reads as zeros.
func uuFiles(text []byte, budget int) []embeddedFile {
	if !bytes.Contains(text, []byte("begin ")) {
		return nil
	}
	var files []embeddedFile
	for len(text) > 0 && len(files) <= maxTextFiles && budget > 0 {
		line, rest, _ := bytes.Cut(text, []byte("\n"))
		text = rest
		if !bytes.HasPrefix(line, []byte("begin ")) {
			continue
		}
		name, ok := uuBeginName(line)
		if !ok {
			continue
		}
		f := embeddedFile{name: string(name)}
		for len(text) > 0 && budget > 0 {
			line, rest, _ = bytes.Cut(text, []byte("\n"))
			line = bytes.TrimRight(line, "\r")
			if string(line) == "end" {
				break
			}
			text = rest
			if len(line) == 0 {
				continue
			}
			n := int(line[0]-' ') & 63
			if n == 0 {
				continue // the "`" line before "end"
			}
			n = min(n, budget)
			var group [4]byte
			out := make([]byte, 0, 48)
			for i := 1; len(out) < n; i += 4 {
				for k := range group {
					group[k] = 0
					if i+k < len(line) {
						group[k] = (line[i+k] - ' ') & 63
					}
				}
				out = append(out, group[0]<<2|group[1]>>4, group[1]<<4|group[2]>>2, group[2]<<6|group[3])
			}
			f.data = append(f.data, out[:n]...)
			budget -= n
		}
		files = append(files, f)
	}
	return files
}
