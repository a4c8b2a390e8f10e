// Package apiclient is a small HTTP client for a node's admin API
// (/api/v1/, described by web/openapi.json). It knows the API's
// conventions—bearer tokens, the error body, next_after paging—and nothing
// of its objects, so the CLI keeps working when the API grows fields.
package apiclient

import (
	"bytes"
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"sort"
	"strconv"
	"strings"
	"time"
)

// MaxPageSize is the largest `limit` the API accepts (openapi.json:
// "at most 1000"); lists ask for full pages to need fewer round trips.
const MaxPageSize = 1000

// maxResponse bounds what is read of one answer: a full page of domains
// with their rules is far below it, a misconfigured URL pointing at
// something else is cut off.
const maxResponse = 32 << 20

// Client calls one node's admin API.
type Client struct {
	base    *url.URL
	token   string
	timeout time.Duration
	http    *http.Client
	agent   string
}

// New returns a client for the API at base (scheme and host, e.g.
// http://127.0.0.1:8025). Every request is bounded by timeout.
func New(base, token string, timeout time.Duration, userAgent string) (*Client, error) {
	if !strings.Contains(base, "://") {
		return nil, fmt.Errorf("API URL %q: want http://HOST:PORT or https://HOST:PORT", base)
	}
	u, err := url.Parse(strings.TrimRight(base, "/"))
	if err != nil {
		return nil, fmt.Errorf("API URL %q: %w", base, err)
	}
	if (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("API URL %q: want http://HOST:PORT or https://HOST:PORT", base)
	}
	if token == "" {
		return nil, errors.New("no API token")
	}
	if timeout <= 0 {
		return nil, fmt.Errorf("timeout %v: must be positive", timeout)
	}
	return &Client{
		base: u, token: token, timeout: timeout, agent: userAgent,
		// The client's own timeout backs up the per-request context, so a
		// caller that passes context.Background() still cannot hang.
		http: &http.Client{Timeout: timeout},
	}, nil
}

// Error is an answer other than 2xx. Message and Fields come from the
// API's {"error": ..., "fields": {...}} body when it has one.
type Error struct {
	Status  int
	Message string
	Fields  map[string]string
}

// Error reports the message and then one line per invalid field, sorted,
// so a script's log shows every problem of a request at once.
func (e *Error) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "%s (HTTP %d)", e.Message, e.Status)
	names := make([]string, 0, len(e.Fields))
	for n := range e.Fields {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		fmt.Fprintf(&b, "\n  %s: %s", n, e.Fields[n])
	}
	return b.String()
}

// busyAttempts is how many times Do sends a request the node answers 429
// (its searches, imports, map renders or open quarantined messages are all
// taken: nothing was done), waiting each time as its Retry-After says, at
// most maxBusyWait, within the request's timeout.
const (
	busyAttempts = 3
	maxBusyWait  = 10 * time.Second
)

// Do sends one request to path (escaped by the caller: url.PathEscape for
// a recipient's local part). body, when not nil, is sent as JSON. The answer's
// body is returned as is (nil for 204); a non-2xx answer is an *Error.
// A 429 is tried again (busyAttempts): the node did nothing, so even a
// POST is safe to repeat.
func (c *Client) Do(ctx context.Context, method, path string, query url.Values, body any) ([]byte, error) {
	ctx, cancel := context.WithTimeout(ctx, c.timeout)
	defer cancel()
	u, err := url.Parse(c.base.String() + path)
	if err != nil {
		return nil, fmt.Errorf("%s %s: %w", method, path, err)
	}
	u.RawQuery = query.Encode()
	var payload []byte
	if body != nil {
		if payload, err = json.Marshal(body); err != nil {
			return nil, fmt.Errorf("encode request: %w", err)
		}
	}
	for attempt := 1; ; attempt++ {
		data, wait, err := c.send(ctx, method, u, payload)
		var busy *Error
		if attempt == busyAttempts || !errors.As(err, &busy) || busy.Status != http.StatusTooManyRequests {
			return data, err
		}
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return nil, err
		case <-t.C:
		}
	}
}

// send makes one attempt of Do; wait is the answer's Retry-After (1 s
// without one), capped at maxBusyWait.
func (c *Client) send(ctx context.Context, method string, u *url.URL, payload []byte) (data []byte, wait time.Duration, err error) {
	var rd io.Reader = http.NoBody
	if payload != nil {
		rd = bytes.NewReader(payload)
	}
	req, err := http.NewRequestWithContext(ctx, method, u.String(), rd)
	if err != nil {
		return nil, 0, fmt.Errorf("%s %s: %w", method, u.Path, err)
	}
	req.Header.Set("Authorization", "Bearer "+c.token)
	req.Header.Set("Accept", "application/json")
	if payload != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if c.agent != "" {
		req.Header.Set("User-Agent", c.agent)
	}
	resp, err := c.http.Do(req)
	if err != nil {
		// The *url.Error already names the method and URL.
		return nil, 0, err
	}
	defer resp.Body.Close()
	data, err = io.ReadAll(io.LimitReader(resp.Body, maxResponse+1))
	if err != nil {
		return nil, 0, fmt.Errorf("%s %s: read answer: %w", method, u.String(), err)
	}
	if len(data) > maxResponse {
		return nil, 0, fmt.Errorf("%s %s: answer larger than %d bytes", method, u.String(), maxResponse)
	}
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		wait = time.Second
		if secs, err := strconv.Atoi(resp.Header.Get("Retry-After")); err == nil && secs >= 0 {
			wait = min(time.Duration(secs)*time.Second, maxBusyWait)
		}
		return nil, wait, apiError(resp, data)
	}
	return data, 0, nil
}

// apiError decodes the API's error body; anything else (a proxy's HTML
// page, a different server on that port) is reported by its status line.
func apiError(resp *http.Response, data []byte) *Error {
	e := &Error{Status: resp.StatusCode}
	var body struct {
		Error  string            `json:"error"`
		Fields map[string]string `json:"fields"`
	}
	if json.Unmarshal(data, &body) == nil && body.Error != "" {
		e.Message, e.Fields = body.Error, body.Fields
	} else {
		e.Message = strings.TrimSpace(strings.TrimPrefix(resp.Status, strconv.Itoa(resp.StatusCode)))
		if e.Message == "" {
			e.Message = http.StatusText(resp.StatusCode)
		}
		e.Message = "not an mxgrid API answer: " + e.Message
	}
	return e
}

// Get decodes the answer to a GET into out.
func (c *Client) Get(ctx context.Context, path string, query url.Values, out any) error {
	data, err := c.Do(ctx, http.MethodGet, path, query, nil)
	if err != nil {
		return err
	}
	return decode(path, data, out)
}

func decode(path string, data []byte, out any) error {
	if err := json.Unmarshal(data, out); err != nil {
		return fmt.Errorf("decode answer of %s: %w", path, err)
	}
	return nil
}

// List fetches the items of a list route, following next_after from page
// to page until the last one or until limit items (0: all of them). Items
// are returned undecoded so callers can print them exactly as sent.
func (c *Client) List(ctx context.Context, path string, query url.Values, limit int) ([]json.RawMessage, error) {
	q := url.Values{}
	for k, v := range query {
		q[k] = v
	}
	var items []json.RawMessage
	var after int64
	step := 0 // the cursor's direction, once two pages told it
	for {
		size := MaxPageSize
		if limit > 0 && limit-len(items) < size {
			size = limit - len(items)
		}
		q.Set("limit", strconv.Itoa(size))
		if after > 0 {
			q.Set("after", strconv.FormatInt(after, 10))
		}
		var page struct {
			Items     []json.RawMessage `json:"items"`
			NextAfter int64             `json:"next_after"`
		}
		if err := c.Get(ctx, path, q, &page); err != nil {
			return items, err
		}
		items = append(items, page.Items...)
		if page.NextAfter == 0 || (limit > 0 && len(items) >= limit) {
			return items, nil
		}
		// A list's cursor goes one way: up, or down where the list is
		// newest first (the quarantine, the audit log). One that stands
		// still or turns back would loop forever on a misbehaving server.
		if after > 0 {
			d := cmp.Compare(page.NextAfter, after)
			if d == 0 || (step != 0 && d != step) {
				return items, fmt.Errorf("list %s: next_after %d does not advance past %d", path, page.NextAfter, after)
			}
			step = d
		}
		after = page.NextAfter
	}
}
