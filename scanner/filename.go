package scanner

import (
	"path"
	"strings"
)

// Extensions returns the file name's extensions, last first, lower-case:
// "Invoice.PDF .exe" gives ["exe", "pdf"]. Spaces and dots that pad the name
// to hide the real extension in a file dialog are trimmed, and so is an
// NTFS stream name that names the file's own data ("invoice.js::$DATA" is
// saved as invoice.js). A named stream ("amazon.com: Order.pdf", read by
// NTFS as the stream " Order.pdf" of a file amazon.com) holds the data
// beside an empty file, which runs nothing: read so, an honest PDF named
// after an order's subject was refused as an executable (.com); the name
// as mail clients save it (SavedColonName) is judged besides. It is
// how the antivirus and the attachment rules read a name, so that what one
// sees through, the other does too. A name ends at a NUL, as a C string
// does where Windows saves it: "invoice.js\x00.txt" is invoice.js.
func Extensions(name string) []string {
	if i := strings.IndexByte(name, 0); i >= 0 {
		name = name[:i]
	}
	name = strings.ToLower(path.Base(strings.ReplaceAll(name, `\`, "/")))
	if len(name) > 2 && name[1] == ':' {
		name = name[2:] // a drive: "c:invoice.js"
	}
	if i := strings.IndexByte(name, ':'); i > 0 && mainStream(name[i+1:]) {
		name = name[:i]
	}
	var exts []string
	for range 2 {
		name = strings.TrimRight(name, " .")
		i := strings.LastIndexByte(name, '.')
		if i <= 0 {
			break
		}
		exts = append(exts, strings.TrimSpace(name[i+1:]))
		name = name[:i]
	}
	return exts
}

// SavedColonName returns name with each colon as mail clients save it,
// replaced by an underscore, and whether it held one. Windows allows a
// colon in no file name: Outlook and Thunderbird save "RE: Rechnung.js"
// as "RE_ Rechnung.js", which a double click runs, while Extensions reads
// the colon as an NTFS stream's ("invoice.js::$DATA" is invoice.js), a
// file "re" here. Both readings are judged: Part.Names gives this one
// too, and the antivirus judges it beside the name.
func SavedColonName(name string) (string, bool) {
	if !strings.Contains(name, ":") {
		return name, false
	}
	return strings.ReplaceAll(name, ":", "_"), true
}

// mainStream reports whether what follows a name's first colon ("stream"
// or "stream:type") names NTFS's unnamed data stream, the file's own
// content: an empty stream name ("::$DATA", or a colon at the end), or
// "$DATA" itself, read as the type by whoever writes it so.
func mainStream(rest string) bool {
	stream, _, _ := strings.Cut(rest, ":")
	return stream == "" || strings.EqualFold(stream, "$DATA")
}
