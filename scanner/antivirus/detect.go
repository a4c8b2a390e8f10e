package antivirus

import (
	"bytes"
	"encoding/binary"
	"slices"

	"github.com/mxgrid/mxgrid/scanner"
	"github.com/mxgrid/mxgrid/scanner/unpack"
)

// contentType is what the first bytes of a file say it is.
type contentType string

const (
	ctUnknown  contentType = ""
	ctPE       contentType = "pe"
	ctELF      contentType = "elf"
	ctMachO    contentType = "macho"
	ctOLE      contentType = "ole" // Compound File Binary: .doc .xls .ppt .msi
	ctZip      contentType = "zip" // also .docx .xlsx .pptx .jar
	ctPDF      contentType = "pdf"
	ctPNG      contentType = "png"
	ctJPEG     contentType = "jpeg"
	ctGIF      contentType = "gif"
	ctLNK      contentType = "lnk"
	ctISO      contentType = "iso"
	ctShebang  contentType = "shebang"
	ctRTF      contentType = "rtf"
	ctGzip     contentType = "gzip"
	ctTar      contentType = "tar"
	ctRar      contentType = "rar"
	ctSevenZip contentType = "7z"
	ctBzip2    contentType = "bzip2"
	ctXZ       contentType = "xz"
	ctZstd     contentType = "zstd"
)

var (
	magicOLE     = []byte{0xD0, 0xCF, 0x11, 0xE0, 0xA1, 0xB1, 0x1A, 0xE1}
	magicLNK     = []byte{0x4C, 0x00, 0x00, 0x00, 0x01, 0x14, 0x02, 0x00}
	magicMachO   = [][]byte{{0xFE, 0xED, 0xFA, 0xCE}, {0xFE, 0xED, 0xFA, 0xCF}, {0xCE, 0xFA, 0xED, 0xFE}, {0xCF, 0xFA, 0xED, 0xFE}}
	magicZip     = [][]byte{[]byte("PK\x03\x04"), []byte("PK\x05\x06")}
	magicRar     = []byte("Rar!\x1A\x07")
	magicSevenZ  = []byte{'7', 'z', 0xBC, 0xAF, 0x27, 0x1C}
	vbaProjectLE = utf16le("_VBA_PROJECT")
)

func utf16le(s string) []byte {
	b := make([]byte, 0, 2*len(s))
	for i := 0; i < len(s); i++ {
		b = append(b, s[i], 0)
	}
	return b
}

// sniff identifies data by its magic bytes. Formats are only those that
// matter for blocking or for descending into (archives).
func sniff(data []byte) contentType {
	switch {
	case isPE(data):
		return ctPE
	case bytes.HasPrefix(data, []byte("\x7fELF")):
		return ctELF
	case bytes.HasPrefix(data, magicOLE):
		return ctOLE
	case bytes.HasPrefix(data, magicLNK):
		return ctLNK
	case bytes.HasPrefix(data, []byte("%PDF-")):
		return ctPDF
	case bytes.HasPrefix(data, []byte("\x89PNG\r\n\x1a\n")):
		return ctPNG
	case bytes.HasPrefix(data, []byte{0xFF, 0xD8, 0xFF}):
		return ctJPEG
	case bytes.HasPrefix(data, []byte("GIF87a")), bytes.HasPrefix(data, []byte("GIF89a")):
		return ctGIF
	case bytes.HasPrefix(data, []byte("{\\rtf")):
		return ctRTF
	case unpack.IsGzip(data):
		return ctGzip
	case bytes.HasPrefix(data, magicRar):
		return ctRar
	case bytes.HasPrefix(data, magicSevenZ):
		return ctSevenZip
	case unpack.IsBzip2(data):
		return ctBzip2
	case unpack.IsXZ(data):
		return ctXZ
	case unpack.IsZstd(data):
		return ctZstd
	case bytes.HasPrefix(data, []byte("#!")):
		return ctShebang
	case unpack.IsTar(data):
		return ctTar
	case len(data) > 0x8006 && string(data[0x8001:0x8006]) == "CD001":
		// ISO 9660 primary volume descriptor at sector 16 (ECMA-119 8.4).
		return ctISO
	}
	for _, m := range magicZip {
		if bytes.HasPrefix(data, m) {
			return ctZip
		}
	}
	for _, m := range magicMachO {
		if bytes.HasPrefix(data, m) {
			return ctMachO
		}
	}
	return ctUnknown
}

// isPE checks for a Portable Executable: "MZ", and the PE signature at the
// offset the DOS header's e_lfanew (0x3C) gives. "MZ" alone is two bytes any
// text can start with.
func isPE(data []byte) bool {
	if len(data) < 0x40 || data[0] != 'M' || data[1] != 'Z' {
		return false
	}
	off := int64(binary.LittleEndian.Uint32(data[0x3C:]))
	return off+4 <= int64(len(data)) && string(data[off:off+4]) == "PE\x00\x00"
}

// oleHasMacros reports a VBA project in a Compound File: the directory holds
// a stream named _VBA_PROJECT (UTF-16LE names, [MS-OVBA] 2.2.1) inside the
// Macros (Word) or _VBA_PROJECT_CUR (Excel) storage.
func oleHasMacros(data []byte) bool {
	return bytes.Contains(data, vbaProjectLE)
}

// Extensions, lower-case without the dot. Beside the classics, what
// campaigns since 2022 have used where those were blocked: app packages
// (appx, msix, appinstaller), MMC consoles (msc, GrimResource), compiled
// help (chm), cabinets Explorer opens (cab), Excel web queries and SYLK
// files (iqy, slk), search and library descriptors (search-ms,
// library-ms); Microsoft's default common attachment filter lists most.
var (
	executableExts = set("exe", "scr", "com", "pif", "dll", "cpl", "msi", "msp", "mst", "jar", "jnlp", "gadget", "application",
		"appref-ms", "xll", "msc", "cab", "sys", "appx", "appxbundle", "msix", "msixbundle", "appinstaller")
	scriptExts    = set("js", "jse", "vbs", "vbe", "vb", "wsf", "wsh", "wsc", "hta", "ps1", "psm1", "bat", "cmd", "reg", "sct", "msh", "ws", "chm")
	macroExts     = set("docm", "dotm", "xlsm", "xltm", "xlam", "pptm", "potm", "ppam", "ppsm", "sldm", "iqy", "slk")
	shortcutExts  = set("lnk", "url", "scf", "settingcontent-ms", "search-ms", "library-ms")
	diskImageExts = set("iso", "img", "vhd", "vhdx")
	// Decoys are what a double extension pretends to be.
	decoyExts = set("pdf", "doc", "docx", "xls", "xlsx", "ppt", "pptx", "txt", "rtf", "jpg", "jpeg", "png", "gif", "zip", "htm", "html", "csv", "mp3", "mp4", "odt")
	// expectedContent says which sniffed types a name's extension allows;
	// anything else sniffed with confidence means the name lies.
	expectedContent = map[string][]contentType{
		"pdf": {ctPDF}, "png": {ctPNG}, "jpg": {ctJPEG}, "jpeg": {ctJPEG}, "gif": {ctGIF},
		"doc": {ctOLE, ctRTF}, "xls": {ctOLE}, "ppt": {ctOLE}, "msi": {ctOLE},
		"docx": {ctZip}, "xlsx": {ctZip}, "pptx": {ctZip}, "zip": {ctZip}, "jar": {ctZip},
		"odt": {ctZip}, "ods": {ctZip}, "rtf": {ctRTF}, "gz": {ctGzip}, "tgz": {ctGzip}, "tar": {ctTar},
		"bz2": {ctBzip2}, "tbz2": {ctBzip2}, "tbz": {ctBzip2}, "xz": {ctXZ}, "txz": {ctXZ},
		"zst": {ctZstd}, "tzst": {ctZstd},
		"rar": {ctRar}, "7z": {ctSevenZip}, "iso": {ctISO},
		"txt": {ctUnknown, ctShebang}, "csv": {ctUnknown}, "htm": {ctUnknown}, "html": {ctUnknown},
		"exe": {ctPE}, "dll": {ctPE}, "scr": {ctPE},
	}
)

func set(xs ...string) map[string]bool {
	m := make(map[string]bool, len(xs))
	for _, x := range xs {
		m[x] = true
	}
	return m
}

// kindsOf lists the blockable kinds of a file, from its content, from what
// was found inside it (a VBA project), and from its name.
func kindsOf(name string, ct contentType, hasMacros bool) []string {
	var kinds []string
	add := func(k string) {
		for _, have := range kinds {
			if have == k {
				return
			}
		}
		kinds = append(kinds, k)
	}
	switch ct {
	case ctPE, ctELF, ctMachO:
		add(KindExecutable)
	case ctShebang:
		add(KindScript)
	case ctLNK:
		add(KindShortcut)
	case ctISO:
		add(KindDiskImage)
	}
	if hasMacros {
		add(KindOfficeMacro)
	}
	exts := scanner.Extensions(name)
	if len(exts) == 0 {
		return kinds
	}
	last := exts[0]
	switch {
	case executableExts[last]:
		add(KindExecutable)
	case scriptExts[last]:
		add(KindScript)
	case macroExts[last]:
		add(KindOfficeMacro)
	case shortcutExts[last]:
		add(KindShortcut)
	case diskImageExts[last]:
		add(KindDiskImage)
	}
	if len(exts) == 2 && decoyExts[exts[1]] && (executableExts[last] || scriptExts[last] || shortcutExts[last]) {
		add(KindDoubleExtension)
	}
	return kinds
}

// nameLies reports a file whose content is a known type its extension does
// not allow (a PE named invoice.pdf). Unknown extensions and unrecognised
// content never count: absence of evidence is not a lie.
func nameLies(name string, ct contentType) bool {
	exts := scanner.Extensions(name)
	if len(exts) == 0 {
		return false
	}
	allowed, ok := expectedContent[exts[0]]
	if !ok {
		return false
	}
	return ct != ctUnknown && !slices.Contains(allowed, ct)
}
