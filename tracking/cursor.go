package tracking

import (
	"encoding/base64"
	"errors"
	"strconv"
	"strings"
	"time"
)

// Cursor is where a page of newest-first results ended: the last record's
// time and id. Records are ordered by (time, id) descending, so a cursor
// stays valid while new records arrive.
type Cursor struct {
	Time time.Time
	ID   int64
}

// IsZero reports whether c starts at the newest record.
func (c Cursor) IsZero() bool { return c.ID == 0 && c.Time.IsZero() }

// cursorPrefix versions the opaque encoding.
const cursorPrefix = "c1."

// String is the opaque form handed to API clients.
func (c Cursor) String() string {
	if c.IsZero() {
		return ""
	}
	raw := strconv.FormatInt(c.Time.UnixNano(), 10) + "." + strconv.FormatInt(c.ID, 10)
	return cursorPrefix + base64.RawURLEncoding.EncodeToString([]byte(raw))
}

var errBadCursor = errors.New("tracking: malformed cursor")

// ParseCursor reads what String wrote; "" is the zero cursor.
func ParseCursor(s string) (Cursor, error) {
	if s == "" {
		return Cursor{}, nil
	}
	enc, ok := strings.CutPrefix(s, cursorPrefix)
	if !ok || len(enc) > 64 {
		return Cursor{}, errBadCursor
	}
	raw, err := base64.RawURLEncoding.DecodeString(enc)
	if err != nil {
		return Cursor{}, errBadCursor
	}
	ns, id, ok := strings.Cut(string(raw), ".")
	if !ok {
		return Cursor{}, errBadCursor
	}
	n, err1 := strconv.ParseInt(ns, 10, 64)
	i, err2 := strconv.ParseInt(id, 10, 64)
	if err1 != nil || err2 != nil || i <= 0 || n <= 0 {
		return Cursor{}, errBadCursor
	}
	return Cursor{Time: time.Unix(0, n).UTC(), ID: i}, nil
}
