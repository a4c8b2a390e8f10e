package scanner

import (
	"bytes"
)

// yencBeginName reads line as the first line of a yEnc-encoded file as
// Thunderbird recognises it (MimeUntypedText: single-part yEnc 1.x only):
// "=ybegin line=<n> size=<n> name=<name>". It reads what the pattern
// ^=ybegin line=[0-9]* size=[0-9]* name=([^\r\n]+?)\r?$ captures, by
// hand, as uuBeginName does.
func yencBeginName(line []byte) ([]byte, bool) {
	rest, ok := bytes.CutPrefix(line, []byte("=ybegin line="))
	if !ok {
		return nil, false
	}
	if rest, ok = bytes.CutPrefix(skipDigits(rest), []byte(" size=")); !ok {
		return nil, false
	}
	if rest, ok = bytes.CutPrefix(skipDigits(rest), []byte(" name=")); !ok {
		return nil, false
	}
	name, ok := lineRest(rest)
	return name, ok && len(name) > 0
}

func skipDigits(b []byte) []byte {
	for len(b) > 0 && '0' <= b[0] && b[0] <= '9' {
		b = b[1:]
	}
	return b
}

// yencFiles finds the yEnc-encoded files in text, decoding at most budget
// bytes in all. Thunderbird shows such a block in untyped text (a message
// or part without a Content-Type) as an attachment under its name, as it
// shows a uuencoded one, so a file hidden this way must be scanned like an
// attached one. A file ends at "=yend size=", as Thunderbird ends it, or
// with the text.
func yencFiles(text []byte, budget int) []embeddedFile {
	if !bytes.Contains(text, []byte("=ybegin ")) {
		return nil
	}
	var files []embeddedFile
	for len(text) > 0 && len(files) <= maxTextFiles && budget > 0 {
		line, rest, _ := bytes.Cut(text, []byte("\n"))
		text = rest
		if !bytes.HasPrefix(line, []byte("=ybegin ")) {
			continue
		}
		name, ok := yencBeginName(line)
		if !ok {
			continue
		}
		f := embeddedFile{name: string(name)}
		for len(text) > 0 && budget > 0 {
			line, rest, _ = bytes.Cut(text, []byte("\n"))
			if bytes.HasPrefix(line, []byte("=yend size=")) {
				break
			}
			text = rest
			line = bytes.TrimRight(line, "\r")
			for i := 0; i < len(line) && budget > 0; i++ {
				c := line[i]
				if c == '=' && i+1 < len(line) {
					i++
					c = line[i] - 64
				}
				f.data = append(f.data, c-42)
				budget--
			}
		}
		files = append(files, f)
	}
	return files
}
