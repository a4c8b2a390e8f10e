package scanner

import (
	"bytes"
	"encoding/binary"
)

// TNEF ([MS-OXTNEF]) is how Outlook sends rich-text mail: a winmail.dat
// attachment that holds the message's own attachments. Outlook opens them
// for the recipient; a reader that only saw winmail.dat let an executable
// or script inside it through the blocked types and the attachment rules.

// tnefSignature opens every TNEF stream (MS-OXTNEF 2.1.3.1).
const tnefSignature = 0x223E9F78

// Attribute ids, without the type in the high word (MS-OXTNEF 2.1.3.3):
// each attachment starts with its rendering data, then gives its title
// (the file name) and its data.
const (
	tnefAttachRendData = 0x9002
	tnefAttachTitle    = 0x8010
	tnefAttachData     = 0x800F
)

// maxTNEFFiles bounds the attachments read from one TNEF stream.
const maxTNEFFiles = 32

// tnefFiles lists the attachments of a TNEF stream, at most maxTNEFFiles
// and, when there are more, one empty file more that says so. The files'
// data are slices of data, not copies. A stream cut short gives what it
// holds: readers show an attachment whose data ends early.
func tnefFiles(data []byte) []embeddedFile {
	if len(data) < 6 || binary.LittleEndian.Uint32(data) != tnefSignature {
		return nil
	}
	var files []embeddedFile
	current := func() *embeddedFile {
		if len(files) == 0 {
			files = append(files, embeddedFile{})
		}
		return &files[len(files)-1]
	}
	// Level (1 byte), id (4), length (4), value, checksum (2).
	for pos := 6; pos+9 <= len(data); {
		id := binary.LittleEndian.Uint32(data[pos+1:]) & 0xFFFF
		length := int(min(binary.LittleEndian.Uint32(data[pos+5:]), uint32(len(data)-pos-9)))
		value := data[pos+9 : pos+9+length]
		pos += 9 + length + 2
		switch id {
		case tnefAttachRendData:
			if len(files) == maxTNEFFiles {
				return append(files, embeddedFile{})
			}
			files = append(files, embeddedFile{})
		case tnefAttachTitle:
			name, _, _ := bytes.Cut(value, []byte{0})
			current().name = string(name)
		case tnefAttachData:
			current().data = value
		}
	}
	return files
}
