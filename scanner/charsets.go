package scanner

import (
	"github.com/emersion/go-message/charset"
	"golang.org/x/text/encoding"
	"golang.org/x/text/encoding/charmap"
	"golang.org/x/text/encoding/japanese"
	"golang.org/x/text/encoding/korean"
	"golang.org/x/text/encoding/simplifiedchinese"
)

// Charset names that mailers write and neither IANA's nor the WHATWG's
// index knows: Python's email package writes the codec's name (cp932,
// cp949), Java and Windows theirs (x-ms-cp932, x-windows-949, x-cp20936).
// Unknown, a part was left undecoded: MIME_UNKNOWN_CHARSET, and its bytes,
// read as UTF-8, TEXT_UNDECLARED_8BIT and words the model never saw; a
// short Japanese business mail in cp932 was tagged as spam. Each is the
// encoding Windows means by it (the WHATWG's Shift_JIS and EUC-KR are
// Windows' code pages 932 and 949).
func init() {
	for enc, names := range map[encoding.Encoding][]string{
		japanese.ShiftJIS:     {"cp932", "ms932", "x-ms-cp932", "windows-932", "ibm-943"},
		japanese.ISO2022JP:    {"iso-2022-jp-2", "csiso2022jp2"},
		korean.EUCKR:          {"cp949", "ms949", "x-windows-949", "windows-949", "uhc"},
		simplifiedchinese.GBK: {"cp936", "ms936", "x-cp20936", "cp20936"},
		charmap.CodePage850:   {"cp-850"},
	} {
		for _, name := range names {
			charset.RegisterEncoding(name, enc)
		}
	}
}
