// Package queryval reads the typed values of a URL query that the API and
// the panel share between list filters, gathering one error per key so a
// form can show each at its field.
package queryval

import (
	"net/url"
	"strconv"
)

// PositiveInt is q's key as a positive int64: 0 when absent; 0 and an
// error under key when it is not a positive integer. A value that does not
// parse must be refused, not dropped: a dropped filter silently widens the
// list.
func PositiveInt(q url.Values, key string, errs map[string]string) int64 {
	v := q.Get(key)
	if v == "" {
		return 0
	}
	n, err := strconv.ParseInt(v, 10, 64)
	if err != nil || n <= 0 {
		errs[key] = "must be a positive integer"
		return 0
	}
	return n
}
