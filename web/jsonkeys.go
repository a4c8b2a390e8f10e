package web

import (
	"encoding/json"
	"errors"
	"io"
	"strings"
	"unicode/utf8"
)

// keyCheck passes a request body through to the JSON decoder and notes the
// first object key given twice in one object, compared as the decoder
// matches keys to fields: case folded (Go's decoder takes "NAME" and
// "name\u212A" (the Kelvin sign) for "name") and escapes undone. The
// decoder takes the last of such keys; a proxy, a log or a client library
// reading the first sees another request: such a body is refused.
//
// It also notes the body's own keys (the outer object's) whose value is
// null: the decoder leaves a field as it was for a null, so a PATCH with
// "customer_id": null or "routes": null answered 200 and changed nothing,
// where the client asked for a change. No outer field is nullable in
// openapi.json (inside a policy, null means "inherit").
//
// It reads the bytes as they stream by, holding only the keys (values are
// skipped), so a 32 MiB import costs no second copy. It only tracks
// structure: the decoder reports any syntax error.
type keyCheck struct {
	r io.Reader
	// objects holds, per open container, its keys so far (nil for an
	// array).
	objects   []map[string]bool
	expectKey bool
	inString  bool
	escaped   bool
	isKey     bool
	key       []byte
	dup       string
	// last is the last key read; valueOf the outer object's key whose
	// value comes next; nulls those of its keys given null.
	last    string
	valueOf string
	nulls   []string
	// tooLong is set once a key passed maxKeyBytes.
	tooLong bool
	// partial holds a string's UTF-8 sequence read so far; notUTF8 is
	// set at the first invalid one. The decoder turns such bytes into
	// U+FFFD without a word, so "Acme\xff" was stored as "Acme\uFFFD",
	// a name (or list entry) the client never sent.
	partial []byte
	notUTF8 bool
	// hexLeft counts the hex digits of a \u escape still to read, hex
	// holds those read; wantLow is set after a high surrogate's escape,
	// which only a low one's may follow. unpaired is set at the first
	// surrogate escape that is not half of a pair, which the decoder
	// turns into U+FFFD as it does bytes that are not UTF-8.
	hexLeft  int
	hex      rune
	wantLow  bool
	unpaired bool
	// notObject is set when the body begins with anything but an object:
	// the decoder named our Go types refusing one, and took null for {}.
	started, notObject bool
}

// maxKeyBytes bounds a key: no field name is longer, escaped or not. A
// longer one ends the body (errKeyTooLong) before the decoder has it: it
// refused it as an unknown field quoting it whole, four bytes per control
// character, and an import body of one 30 MiB key was answered in 150 MB
// (2.6 GB allocated).
const maxKeyBytes = 256

var errKeyTooLong = errors.New("an object key is longer than any field name")

// maxObjectKeys bounds the keys read per object. No request body holds a
// map: an object is a struct of at most a dozen fields (a policy has 11),
// so one with more distinct keys holds an unknown field the decoder
// refuses, and which of its later keys come twice (or are null) no longer
// matters. Kept without a bound, a 32 MiB import body of one object with
// three million short keys ("a0":0,"a1":0...) made a 170 MB map (and
// 280 MB of allocations) before the decoder refused its first key, where
// the import bound counts ~65 MB a body.
const maxObjectKeys = 64

func (k *keyCheck) Read(p []byte) (int, error) {
	if k.tooLong {
		return 0, errKeyTooLong
	}
	n, err := k.r.Read(p)
	for _, b := range p[:n] {
		if k.step(b); k.tooLong {
			// The chunk is withheld too: with its end of the key, the
			// decoder would have the whole object and refuse the key.
			return 0, errKeyTooLong
		}
	}
	return n, err
}

func (k *keyCheck) step(b byte) {
	if k.inString {
		k.checkUTF8(b)
		switch {
		case k.hexLeft > 0:
			k.hexDigit(b)
		case k.escaped:
			k.escaped = false
			if b == 'u' {
				k.hexLeft, k.hex = 4, 0
			} else {
				k.noLow()
			}
		case b == '\\':
			k.escaped = true
		case b == '"':
			k.noLow()
			k.inString = false
			if k.isKey {
				k.addKey()
			}
			return
		default:
			k.noLow()
		}
		if k.isKey {
			k.tooLong = len(k.key) == maxKeyBytes
			k.key = append(k.key, b)
		}
		return
	}
	if !k.started && b != ' ' && b != '\t' && b != '\n' && b != '\r' {
		k.started, k.notObject = true, b != '{'
	}
	if k.valueOf != "" && b != ' ' && b != '\t' && b != '\n' && b != '\r' {
		if b == 'n' { // JSON's only value starting so is null
			k.nulls = append(k.nulls, k.valueOf)
		}
		k.valueOf = ""
	}
	switch b {
	case '"':
		k.inString, k.escaped = true, false
		k.isKey = k.expectKey && len(k.objects) > 0 && k.objects[len(k.objects)-1] != nil
		k.expectKey = false
		k.key = k.key[:0]
	case '{':
		k.objects = append(k.objects, map[string]bool{})
		k.expectKey = true
	case '[':
		k.objects = append(k.objects, nil)
		k.expectKey = false
	case '}', ']':
		if len(k.objects) > 0 {
			k.objects = k.objects[:len(k.objects)-1]
		}
		k.expectKey = false
	case ',':
		k.expectKey = len(k.objects) > 0 && k.objects[len(k.objects)-1] != nil
	case ':':
		k.expectKey = false
		if len(k.objects) == 1 {
			k.valueOf = k.last
		}
	}
}

// checkUTF8 follows b through a string's UTF-8 sequences. Bytes outside
// strings need no check: the decoder refuses any that is not ASCII.
func (k *keyCheck) checkUTF8(b byte) {
	if b < utf8.RuneSelf {
		k.notUTF8 = k.notUTF8 || len(k.partial) > 0
		k.partial = k.partial[:0]
		return
	}
	k.partial = append(k.partial, b)
	if utf8.FullRune(k.partial) {
		k.notUTF8 = k.notUTF8 || !utf8.Valid(k.partial)
		k.partial = k.partial[:0]
	}
}

// hexDigit reads one hex digit of a \u escape; at the last, it checks
// the escaped code unit against the one before.
func (k *keyCheck) hexDigit(b byte) {
	var v byte
	switch {
	case '0' <= b && b <= '9':
		v = b - '0'
	case 'a' <= b && b <= 'f':
		v = b - 'a' + 10
	case 'A' <= b && b <= 'F':
		v = b - 'A' + 10
	}
	k.hex = k.hex<<4 | rune(v)
	if k.hexLeft--; k.hexLeft > 0 {
		return
	}
	low := 0xdc00 <= k.hex && k.hex <= 0xdfff
	k.unpaired = k.unpaired || low != k.wantLow
	k.wantLow = 0xd800 <= k.hex && k.hex <= 0xdbff
}

// noLow notes a string going on with anything but a \u escape: a high
// surrogate's escape just before it was half a pair.
func (k *keyCheck) noLow() {
	k.unpaired = k.unpaired || k.wantLow
	k.wantLow = false
}

func (k *keyCheck) addKey() {
	k.last = ""
	keys := k.objects[len(k.objects)-1]
	if len(keys) >= maxObjectKeys {
		return
	}
	name := string(k.key)
	if strings.IndexByte(name, '\\') >= 0 {
		var s string
		if json.Unmarshal([]byte(`"`+name+`"`), &s) != nil {
			return // the decoder reports it
		}
		name = s
	}
	k.last = name
	if k.dup != "" {
		return
	}
	// Simple case folding as bytes.EqualFold (the decoder's) compares:
	// upper then lower maps the Kelvin sign to k and the long s to s.
	folded := strings.ToLower(strings.ToUpper(name))
	if keys[folded] {
		k.dup = name
		return
	}
	keys[folded] = true
}
