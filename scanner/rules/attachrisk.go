package rules

import (
	"archive/tar"
	"archive/zip"
	"bytes"
	_ "embed"
	"errors"
	"html"
	"io"
	"strings"

	"github.com/mxgrid/mxgrid/scanner"
	"github.com/mxgrid/mxgrid/scanner/archdir"
	"github.com/mxgrid/mxgrid/scanner/unpack"
	"github.com/mxgrid/mxgrid/scanner/zipdir"
)

// Rules about attachments that carry phishing or malware. They read the
// parser's leaves (decoded bytes), so a page or an archive is judged by
// what it holds, not only by its name.
const (
	AttachHTML        = "ATTACH_HTML"
	AttachHTMLActive  = "ATTACH_HTML_ACTIVE"
	AttachDiskImage   = "ATTACH_DISK_IMAGE"
	AttachOneNote     = "ATTACH_ONENOTE"
	AttachArchivePass = "ATTACH_ARCHIVE_PASSWORD"
	AttachPDFLaunch   = "ATTACH_PDF_LAUNCH"
	AttachPDFScript   = "ATTACH_PDF_JAVASCRIPT"
	ImageSingleLink   = "HTML_IMAGE_SINGLE_LINK"
)

var attachWeights = map[string]float64{
	AttachHTML: 3.0,
	// A page with a form, a script or a remote link, opened from the
	// local disk: a login form no URL blocklist can reach. It comes with
	// ATTACH_HTML, and the two together reach the tag score.
	AttachHTMLActive: 3.0,
	// Mounted with a double click, past Mark-of-the-Web: the malware
	// delivery of 2022-2023. Just under the tag score, as no rule decides
	// alone; the built-in antivirus refuses disk images and shortcuts by
	// default (blocked_types), so this weight is what is left when an
	// operator unblocks them.
	AttachDiskImage: 5.0,
	AttachOneNote:   5.0,
	// With AV_ENCRYPTED_ARCHIVE (2) when the archive really is encrypted,
	// this reaches the tag score: a scanner-proof box with its key.
	AttachArchivePass: 4.0,
	// A PDF that starts a program or opens a file (a launch action):
	// readers ask first, but the lure is written to make the reader say
	// yes, and documents people mail never need it. Just under the tag
	// score, as ATTACH_DISK_IMAGE.
	AttachPDFLaunch: 5.0,
	// Forms compute their fields with JavaScript, so a script alone says
	// little; with a lure's text and links it adds up.
	AttachPDFScript: 1.5,
	ImageSingleLink: 1.0,
}

var (
	//go:embed lists/archivepassword.txt
	archivePasswordList string
	archivePassword     = parsePhrases(archivePasswordList)
)

var attachExt = map[string]string{
	// A web page as a file opens in the browser from the local disk: a
	// login form with no URL to block. Invoices are PDFs, not pages.
	".htm": AttachHTML, ".html": AttachHTML, ".shtml": AttachHTML, ".xhtml": AttachHTML,
	".svg": AttachHTML, ".mht": AttachHTML, ".mhtml": AttachHTML,
	// Containers Windows mounts with a double click, which carried
	// malware past Mark-of-the-Web; nobody mails a disk image.
	".iso": AttachDiskImage, ".img": AttachDiskImage, ".vhd": AttachDiskImage, ".vhdx": AttachDiskImage,
	".one": AttachOneNote, ".onepkg": AttachOneNote,
}

// Archive signatures, as the name may lie or be missing. A zip's
// encryption is read from its central directory, a RAR's or a 7z's from
// its headers (archdir); a file named as one that is none of them counts
// as a box that may be locked.
var (
	zipMagic  = []byte("PK\x03\x04")
	pdfMagic  = []byte("%PDF-")
	lockedExt = map[string]bool{".7z": true, ".rar": true}
)

// activeMarkup are what turns an attached page into a working phishing
// page: a form to post credentials, a script to build or send one, a
// resource or redirect fetched from the network.
var activeMarkup = [][]byte{
	[]byte("<form"), []byte("<script"), []byte("http://"), []byte("https://"),
	[]byte("window.location"), []byte("atob("), []byte("<iframe"), []byte("<object"), []byte("<embed"),
	[]byte("javascript:"),
	// A page or a file made from a data: URL, a link's download needing
	// no script: HTML smuggling. Pictures (data:image/) are not.
	[]byte("data:text/html"), []byte("data:application/"),
}

// activeAttribute reports active markup that needs a pattern: a script
// in an event handler (<img src=x onerror=...>, <body onload=...>), a
// redirect however its attribute is quoted, and a resource or link by a
// protocol-relative URL (//host/path, fetched over the network, or SMB
// from a page opened from the disk). It finds what the regular expression
//
//	<[^>]*\son[a-z]+\s*=|http-equiv\s*=\s*["']?refresh|\s(src|href|data|action|formaction)\s*=\s*["']?\s*//
//
// finds, in one pass over data: Go's regexp ran it at 4 to 8 MB/s,
// 35 to 60 ms a page of maxActiveScan bytes, so a 23 MB message of 90 such
// pages cost 5.6 s of CPU. It also finds the event handlers a browser
// reads where the pattern saw none (tag.handler).
func activeAttribute(data []byte) bool {
	inTag := false // the last '<' or '>' read is a '<'
	var t tag
	for i, c := range data {
		if (t.state != outsideTag || c == '<') && t.handler(c, data[i+1:]) {
			return true
		}
		switch {
		case c == '<':
			inTag = true
		case c == '>':
			inTag = false
		case reSpace(c):
			if rest := data[i+1:]; inTag && eventHandler(rest) || protocolRelative(rest) {
				return true
			}
		case c == 'h':
			if refresh(data[i:]) {
				return true
			}
		}
	}
	return false
}

// tag reads tags as a browser does (WHATWG HTML tokenizer, in short), for
// the event handlers the pattern misses: an attribute begins after a
// '/' as after a blank (<body/onload=...>) and right after a quoted
// value (<img src="x"onerror=...>), and a '>' inside a quoted value
// ends no tag (<img alt=">" onerror=...>). A page with none of these
// and no script acted all the same.
type tag struct {
	state tagState
	quote byte // of the quoted value being read
}

type tagState uint8

const (
	outsideTag    tagState = iota
	betweenAttrs           // in the tag's name, an attribute's name or between them
	beforeValue            // after an attribute's '='
	unquotedValue          // in a value without quotes, where a '/' is the value's
	quotedValue
)

// handler reads c, followed by rest, and reports whether an event
// handler's attribute begins after it.
func (t *tag) handler(c byte, rest []byte) bool {
	switch t.state {
	case outsideTag:
		if c == '<' {
			t.state = betweenAttrs
		}
	case betweenAttrs:
		switch {
		case c == '>':
			t.state = outsideTag
		case c == '=':
			t.state = beforeValue
		case c == '/' || reSpace(c):
			return eventHandler(rest)
		}
	case beforeValue:
		switch {
		case c == '>':
			t.state = outsideTag
		case c == '"' || c == '\'':
			t.state, t.quote = quotedValue, c
		case !reSpace(c):
			t.state = unquotedValue
		}
	case unquotedValue:
		switch {
		case c == '>':
			t.state = outsideTag
		case reSpace(c):
			t.state = betweenAttrs
			return eventHandler(rest)
		}
	case quotedValue:
		if c == t.quote {
			t.state = betweenAttrs
			return eventHandler(rest)
		}
	}
	return false
}

// reSpace is the regular expressions' \s.
func reSpace(c byte) bool {
	return c == ' ' || c == '\t' || c == '\n' || c == '\f' || c == '\r'
}

func skipBlanks(b []byte) []byte {
	for len(b) > 0 && reSpace(b[0]) {
		b = b[1:]
	}
	return b
}

// eventHandler: on[a-z]+\s*= starts b.
func eventHandler(b []byte) bool {
	if !bytes.HasPrefix(b, []byte("on")) {
		return false
	}
	n := 2
	for n < len(b) && b[n] >= 'a' && b[n] <= 'z' {
		n++
	}
	b = skipBlanks(b[n:])
	return n > 2 && len(b) > 0 && b[0] == '='
}

// urlAttributes are the attributes whose value a protocol-relative URL
// makes a fetch or a link.
var urlAttributes = [][]byte{[]byte("src"), []byte("href"), []byte("data"), []byte("action"), []byte("formaction")}

// urlAttributeStart holds the first bytes of urlAttributes.
var urlAttributeStart = func() (starts [256]bool) {
	for _, a := range urlAttributes {
		starts[a[0]] = true
	}
	return starts
}()

// protocolRelative: (src|href|data|action|formaction)\s*=\s*["']?\s*// starts b.
func protocolRelative(b []byte) bool {
	if len(b) == 0 || !urlAttributeStart[b[0]] {
		return false // as after most blanks: one look instead of five
	}
	for _, a := range urlAttributes {
		if !bytes.HasPrefix(b, a) {
			continue
		}
		v := skipBlanks(b[len(a):])
		if len(v) == 0 || v[0] != '=' {
			return false
		}
		v = skipBlanks(v[1:])
		if len(v) > 0 && (v[0] == '"' || v[0] == '\'') {
			v = skipBlanks(v[1:])
		}
		return bytes.HasPrefix(v, []byte("//"))
	}
	return false
}

// refresh: http-equiv\s*=\s*["']?refresh starts b.
func refresh(b []byte) bool {
	v, ok := bytes.CutPrefix(b, []byte("http-equiv"))
	if !ok {
		return false
	}
	v = skipBlanks(v)
	if len(v) == 0 || v[0] != '=' {
		return false
	}
	v = skipBlanks(v[1:])
	if len(v) > 0 && (v[0] == '"' || v[0] == '\'') {
		v = v[1:]
	}
	return bytes.HasPrefix(v, []byte("refresh"))
}

// max7zDecoded bounds the compressed 7z header bytes decoded per message,
// all its 7z attachments together: as much as one may take. Each of 200
// attachments of 82 KB could decode 8 MB, 68 ms of CPU apiece.
const max7zDecoded = 8 << 20

// maxActiveScan bounds the bytes of an attached page searched for
// active markup; phishing pages are small, the rest is padding.
const maxActiveScan = 256 << 10

// maxPDFActionInflate bounds the PDF stream bytes a message's PDFs
// inflate, all together, to search them for actions.
const maxPDFActionInflate = 8 << 20

// maxZippedPages bounds the bytes of zipped pages a message's zips
// decompress, all together, to search them for active markup.
const maxZippedPages = 1 << 20

// maxUnpacked bounds the bytes the rules decompress from a message's
// gzip, bzip2, xz and Zstandard attachments, all together, their
// decoders' memory included, to read the names in a tar (past each
// member's content) and the pages: the tar of a few megabytes a lure
// comes in, or one zstd -19 wrote (an 8 MiB window, 10 MiB to decode).
// The antivirus reads on, within zip_max_expanded.
const maxUnpacked = 16 << 20

func attachRisk(f *findings, _ *scanner.Envelope, m *scanner.Message) {
	locked := false // an encrypted archive, or one that may be
	headerLeft := int64(max7zDecoded)
	pagesLeft := maxZippedPages
	pdfLeft := maxPDFActionInflate
	unpackLeft := int64(maxUnpacked)
	for i := range m.Leaves {
		l := &m.Leaves[i]
		if !l.IsAttachment() {
			continue
		}
		sym, name := attachKind(l.Part)
		if sym != "" {
			f.hit(sym, name)
		}
		if sym == AttachHTML && active(l.Data) {
			f.hit(AttachHTMLActive, name)
		}
		// Readers find a PDF's header in its first kilobyte.
		if bytes.Contains(l.Data[:min(len(l.Data), 1024)], pdfMagic) {
			launch, script := scanner.PDFActions(l.Data, &pdfLeft)
			if launch {
				f.hit(AttachPDFLaunch, l.Filename)
			}
			if script {
				f.hit(AttachPDFScript, l.Filename)
			}
		}
		switch {
		case bytes.HasPrefix(l.Data, zipMagic) || zipdir.HasEnd(l.Data):
			locked = zipMembers(f, l, &pagesLeft) || locked
		case archdir.IsRAR(l.Data):
			locked = namedMembers(f, l, archdir.ReadRAR(l.Data, maxZipNames)) || locked
		case archdir.Is7z(l.Data):
			a := archdir.Read7z(l.Data, maxZipNames, headerLeft)
			headerLeft -= a.Decoded
			locked = namedMembers(f, l, a) || locked
		case unpack.IsTar(l.Data):
			tarMembers(f, l.Filename, bytes.NewReader(l.Data), &pagesLeft)
		case unpack.Compression(l.Data) != unpack.None:
			unpackLeft = compressedMembers(f, l, unpackLeft, &pagesLeft)
		case lockedExt[lastExt(l.Filename)]:
			locked = true
		}
	}
	// An encrypted archive whose password is in the text: locked so that
	// no scanner can look inside, with the key for the human. A zip of
	// photos and a Wi-Fi password in the same mail is not that.
	if locked {
		if w := archivePassword.find(foldParts(maxFoldedText, m.Subject, m.Text, m.HTML.Text)); w != "" {
			f.hit(AttachArchivePass, w)
		}
	}
	// As for HTML_IMAGE_ONLY, a logo or a tracking pixel is not the
	// picture the words are in, and a picture linking only the sender's
	// own organisation is its own marketing.
	if m.HTML.Images > m.HTML.Decorations && len(strings.TrimSpace(m.HTML.Text)) < 100 && len(strings.TrimSpace(m.Text)) < 100 && clickableElsewhere(f, m, false) {
		domains := map[string]bool{}
		for _, u := range m.URLs {
			if !u.Image && !u.InFile { // the mail's own links
				domains[u.Domain] = true
			}
		}
		if len(domains) == 1 {
			f.hit(ImageSingleLink, "")
		}
	}
}

// compressedExt are the compressions of one file that keep no name of
// their own, or whose name 7-Zip does not show (gzip's): the file is the
// name without the extension, label.iso in label.iso.xz, which 7-Zip and
// WinRAR open.
var compressedExt = map[string]bool{"gz": true, "bz2": true, "xz": true, "zst": true}

// attachKind is the symbol an attachment's names or declared type earn,
// and the name that earned it.
func attachKind(p scanner.Part) (string, string) {
	for _, name := range p.Names() {
		exts := scanner.Extensions(name)
		if len(exts) == 2 && compressedExt[exts[0]] {
			exts = exts[1:]
		}
		if len(exts) == 0 {
			continue
		}
		if sym, ok := attachExt["."+exts[0]]; ok {
			return sym, name
		}
	}
	if p.Filename == "" && p.Disposition == "attachment" &&
		(p.ContentType == "text/html" || p.ContentType == "image/svg+xml") {
		return AttachHTML, ""
	}
	return "", ""
}

// lastExt is a name's extension as Windows saves it: ".iso" for
// "invoice.iso." or "invoice.iso::$DATA", which path.Ext read as "." and
// ".iso::$data".
func lastExt(name string) string {
	if exts := scanner.Extensions(name); len(exts) > 0 {
		return "." + exts[0]
	}
	return ""
}

// namedMembers applies the attachment kinds to a RAR or 7z archive's
// member names, as zipMembers does for a zip, and reports whether it is,
// or may be, locked: encrypted names or members, or headers that could not
// be read.
func namedMembers(f *findings, l *scanner.Leaf, a archdir.Archive) (locked bool) {
	locked = a.HeadersEncrypted || a.Truncated && len(a.Entries) == 0
	for _, e := range a.Entries {
		if sym, _ := attachKind(scanner.Part{Filename: e.Name}); sym != "" {
			f.hit(sym, l.Filename+":"+e.Name)
		}
		locked = locked || e.Encrypted
	}
	return locked
}

func active(data []byte) bool {
	data = data[:min(len(data), maxActiveScan)]
	// A page in UTF-16 with its BOM, which browsers read so, has a NUL
	// beside every ASCII letter of its markup.
	if bytes.HasPrefix(data, []byte{0xFF, 0xFE}) || bytes.HasPrefix(data, []byte{0xFE, 0xFF}) {
		data = bytes.ReplaceAll(data, []byte{0}, nil)
	}
	data = bytes.ToLower(data)
	// Character references work in attributes: &#106;avascript: is a
	// javascript: link to the browser.
	if bytes.Contains(data, []byte("&#")) {
		data = []byte(html.UnescapeString(string(data)))
	}
	for _, m := range activeMarkup {
		if bytes.Contains(data, m) {
			return true
		}
	}
	return activeAttribute(data)
}

// maxZipNames bounds the member names read from one zip: archive/zip holds
// a few hundred bytes per name it reads (the antivirus flags an archive
// with more members than it looked at).
const maxZipNames = 1000

// zipMembers applies the attachment kinds to a zip's member names, read
// from the central directory without decompressing anything (the
// antivirus does the bounded decompression): an ISO or a shortcut in a
// zip is the same delivery, one click further. It reports whether a member
// is encrypted (general purpose flag bit 0, APPNOTE 4.4.4). A zipped page
// is read, within what is left of pagesLeft, for active markup: a login
// or smuggling page is as active in a zip as attached.
func zipMembers(f *findings, l *scanner.Leaf, pagesLeft *int) (encrypted bool) {
	// The first local header's flag answers even when the central
	// directory is missing (a truncated or hand-made archive).
	encrypted = bytes.HasPrefix(l.Data, zipMagic) && len(l.Data) > 7 && l.Data[6]&1 != 0
	zr, _, err := zipdir.Open(l.Data, maxZipNames)
	if zr != nil && err != nil && !errors.Is(err, zip.ErrInsecurePath) {
		zr = nil
	}
	if zr != nil {
		for _, zf := range zr.File {
			for _, name := range memberNames(zf.Name, zipdir.UnicodePath(zf)) {
				if sym, _ := attachKind(scanner.Part{Filename: name}); sym != "" {
					f.hit(sym, l.Filename+":"+name)
					if sym == AttachHTML && activeMember(zf, pagesLeft) {
						f.hit(AttachHTMLActive, l.Filename+":"+name)
					}
				}
			}
			encrypted = encrypted || zf.Flags&1 != 0
		}
	}
	// Members only a local header gives, which 7-Zip and WinRAR show
	// (zipdir.Unlisted): in a zip with no directory, or in the first
	// of two zips put end to end.
	for _, lf := range zipdir.Unlisted(l.Data, zr, maxZipNames) {
		for _, name := range memberNames(lf.Name, lf.UnicodePath()) {
			if sym, _ := attachKind(scanner.Part{Filename: name}); sym != "" {
				f.hit(sym, l.Filename+":"+name)
			}
		}
		encrypted = encrypted || lf.Flags&1 != 0
	}
	return encrypted
}

// memberNames are the names a zip member is extracted under: its own
// (Windows Explorer's) and that of its Unicode Path field (alt, 7-Zip's),
// if any.
func memberNames(name, alt string) []string {
	if alt == "" {
		return []string{name}
	}
	return []string{name, alt}
}

// activeMember reports active markup in the first maxActiveScan bytes of
// a zip member, decompressing no more than *left, which it charges.
func activeMember(zf *zip.File, left *int) bool {
	if *left <= 0 || zf.Flags&1 != 0 {
		return false
	}
	rc, err := zf.Open()
	if err != nil {
		return false
	}
	defer rc.Close()
	return activeIn(rc, left)
}

// activeIn reports active markup in the first maxActiveScan bytes r
// reads, reading no more than *left, which it charges.
func activeIn(r io.Reader, left *int) bool {
	if *left <= 0 {
		return false
	}
	// A member cut short or corrupt is judged on what decompressed.
	data, _ := io.ReadAll(io.LimitReader(r, int64(min(maxActiveScan, *left))))
	*left -= len(data)
	return active(data)
}

// tarMembers applies the attachment kinds to the names of the files in a
// tar r reads, named outer, as zipMembers does to a zip's (Windows 11's
// Explorer and 7-Zip open .tar, .tar.gz and the like), and reads the pages
// among them, within *pagesLeft, for active markup. It reads no more than
// maxZipNames names.
func tarMembers(f *findings, outer string, r io.Reader, pagesLeft *int) {
	names := 0
	// A tar cut short or corrupt is judged on the names before the fault.
	_ = unpack.Files(r, func(h *tar.Header, content io.Reader) bool {
		if sym, _ := attachKind(scanner.Part{Filename: h.Name}); sym != "" {
			f.hit(sym, outer+":"+h.Name)
			if sym == AttachHTML && activeIn(content, pagesLeft) {
				f.hit(AttachHTMLActive, outer+":"+h.Name)
			}
		}
		names++
		return names < maxZipNames
	})
}

// compressedMembers judges the file a gzip, bzip2, xz or Zstandard
// attachment holds: by the name its gzip header gives (the attachment's
// own name without the extension was judged with it, attachKind), as a
// page by its markup, and as a tar by its members' names (tarMembers).
// What it decompresses, decoders' memory included, is paid from budget;
// it returns what is left.
func compressedMembers(f *findings, l *scanner.Leaf, budget int64, pagesLeft *int) (left int64) {
	// Taken in here, not from the caller: a budget the decoders hold a
	// pointer to is on the heap, and messages without such a file need
	// none.
	left = budget
	s, err := unpack.Open(l.Data, l.Filename, left, &left)
	defer s.Close()
	if err != nil {
		return left
	}
	// What it decodes is paid once read: the xz decoder pays its
	// dictionaries from left meanwhile, and needs to see them paid.
	r := &io.LimitedReader{R: s, N: left}
	limit := r.N
	defer func() { left = max(left-(limit-r.N), 0) }()
	// A tar's first header says it is one.
	head := make([]byte, 512)
	n, _ := io.ReadFull(r, head)
	head = head[:n]
	content := io.MultiReader(bytes.NewReader(head), r)
	if unpack.IsTar(head) {
		tarMembers(f, l.Filename, content, pagesLeft)
		return left
	}
	sym, _ := attachKind(scanner.Part{Filename: s.Name})
	if sym == "" {
		return left
	}
	f.hit(sym, l.Filename+":"+s.Name)
	if sym == AttachHTML && activeIn(content, pagesLeft) {
		f.hit(AttachHTMLActive, l.Filename+":"+s.Name)
	}
	return left
}
