package scanner

import "bytes"

// An S/MIME opaque-signed message (RFC 8551 3.5.2) is an
// application/pkcs7-mime part holding a CMS SignedData (RFC 5652 5) whose
// encapsulated content is a MIME entity, in the clear. Thunderbird and
// Outlook show that entity, attachments and all, whatever its signature;
// read as one opaque part, an executable or a virus in it went unscanned.

// oidPrefix is the DER of the PKCS #7 content type OIDs up to their last
// arc: 1.2.840.113549.1.7.
var oidPrefix = []byte{0x06, 0x09, 0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x07}

const (
	oidData       = 1
	oidSignedData = 2
	// maxBERDepth bounds the nesting signedContent follows: CMS needs
	// four levels and a constructed OCTET STRING one more; BER allows
	// any, which a hostile part would fill.
	maxBERDepth = 8
)

// isSMIME reports a part carrying CMS: application/pkcs7-mime, or the
// older x-pkcs7-mime some clients still send.
func isSMIME(p Part) bool {
	return p.ContentType == "application/pkcs7-mime" || p.ContentType == "application/x-pkcs7-mime"
}

// signedContent returns the content a CMS ContentInfo in BER (DER
// included) encapsulates when it is a SignedData of id-data, or nil. The
// content is a slice of b when it is one OCTET STRING, a copy of its
// pieces when it is given in several (a constructed OCTET STRING, as
// streaming signers write it).
func signedContent(b []byte) []byte {
	// ContentInfo ::= SEQUENCE { contentType, [0] EXPLICIT content }
	ci, ok := berChildren(b, 0x30, 2)
	if !ok || len(ci) < 2 || !isOID(ci[0], oidSignedData) {
		return nil
	}
	// SignedData ::= SEQUENCE { version, digestAlgorithms,
	// encapContentInfo, ... }
	sd, ok := explicit(ci[1], 0x30, 3)
	if !ok || len(sd) < 3 {
		return nil
	}
	// EncapsulatedContentInfo ::= SEQUENCE { eContentType,
	// [0] EXPLICIT eContent OCTET STRING OPTIONAL }
	eci, ok := berChildren(sd[2], 0x30, 2)
	if !ok || len(eci) < 2 || !isOID(eci[0], oidData) {
		return nil
	}
	octets, ok := berChildren(eci[1], 0xa0, 2)
	if !ok || len(octets) != 1 {
		return nil
	}
	return octetString(octets[0], 0)
}

// explicit returns the first max children of the element of tag inside
// the [0] EXPLICIT element e.
func explicit(e []byte, tag byte, max int) ([][]byte, bool) {
	inner, ok := berChildren(e, 0xa0, 2)
	if !ok || len(inner) != 1 {
		return nil, false
	}
	return berChildren(inner[0], tag, max)
}

func isOID(e []byte, last byte) bool {
	return len(e) == len(oidPrefix)+1 && bytes.HasPrefix(e, oidPrefix) && e[len(oidPrefix)] == last
}

// octetString returns the bytes of an OCTET STRING element, primitive
// (0x04) or constructed of others (0x24), or nil.
func octetString(e []byte, depth int) []byte {
	if len(e) == 0 || depth > maxBERDepth {
		return nil
	}
	if e[0] == 0x04 {
		content, _, _ := berElement(e, depth)
		return content
	}
	if e[0] != 0x24 {
		return nil
	}
	content, _, ok := berElement(e, depth)
	if !ok {
		return nil
	}
	var out []byte
	for len(content) > 0 {
		_, n, ok := berElement(content, depth+1)
		if !ok {
			return nil
		}
		out = append(out, octetString(content[:n], depth+1)...)
		content = content[n:]
	}
	return out
}

// berChildren returns the first max elements inside the constructed
// element e, whose tag must be tag: no more are read (a SEQUENCE of a
// million NULLs, two bytes each, made a list of 24 MB).
func berChildren(e []byte, tag byte, max int) ([][]byte, bool) {
	if len(e) == 0 || e[0] != tag {
		return nil, false
	}
	content, _, ok := berElement(e, 0)
	if !ok {
		return nil, false
	}
	var children [][]byte
	for len(content) > 0 && len(children) < max {
		_, n, ok := berElement(content, 0)
		if !ok {
			return nil, false
		}
		children = append(children, content[:n])
		content = content[n:]
	}
	return children, true
}

// berElement reads the element b starts with, a one-byte tag (CMS uses
// no other): its content and its whole length. An indefinite length
// (0x80) runs to the end-of-contents octets that close it, past the
// elements nested in it, at most maxBERDepth deep.
func berElement(b []byte, depth int) (content []byte, n int, ok bool) {
	if len(b) < 2 || b[0]&0x1f == 0x1f || depth > maxBERDepth {
		return nil, 0, false
	}
	l := int(b[1])
	switch {
	case l < 0x80:
		if 2+l > len(b) {
			return nil, 0, false
		}
		return b[2 : 2+l], 2 + l, true
	case l == 0x80:
		if b[0]&0x20 == 0 {
			return nil, 0, false // only a constructed element may be indefinite
		}
		for i := 2; i+1 < len(b); {
			if b[i] == 0 && b[i+1] == 0 {
				return b[2:i], i + 2, true
			}
			_, m, ok := berElement(b[i:], depth+1)
			if !ok {
				return nil, 0, false
			}
			i += m
		}
		return nil, 0, false
	}
	size := l & 0x7f
	if size > 4 || 2+size > len(b) {
		return nil, 0, false
	}
	l = 0
	for _, c := range b[2 : 2+size] {
		l = l<<8 | int(c)
	}
	if l > len(b)-2-size {
		return nil, 0, false
	}
	return b[2+size : 2+size+l], 2 + size + l, true
}
