package web

import (
	"errors"
	"fmt"
	"io"
	"net/http"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/mxgrid/mxgrid/admin"
	"github.com/mxgrid/mxgrid/tenant"
)

// A maximal import body of one-character entries must not become millions
// of strings before the count is checked.
func TestImportListStopsAtTheLimit(t *testing.T) {
	entries := maxImportBody / 4 // `"a",` each: a body at the byte limit
	raw := []byte(`["a"` + strings.Repeat(`,"a"`, entries-1) + `]`)
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	var l importList
	err := l.UnmarshalJSON(raw)
	runtime.ReadMemStats(&after)
	var fe tenant.FieldErrors
	if !errors.As(err, &fe) || fe["recipients"] == "" {
		t.Fatalf("%d entries: err %v, want a recipients field error", entries, err)
	}
	// Decoding all of them costs ~1 GB (measured before the bound); the
	// first admin.MaxImport cost a few MB.
	if got := after.TotalAlloc - before.TotalAlloc; got > 64<<20 {
		t.Errorf("decoding %d entries allocated %d MB before refusing, want < 64", entries, got>>20)
	}
	ok := importList{}
	if err := ok.UnmarshalJSON([]byte(`["a","b"]`)); err != nil || len(ok) != 2 || ok[1] != "b" {
		t.Errorf("two entries: %q, %v", ok, err)
	}
}

// Imports decoded at once are bounded per node: the next is told to retry,
// and once one ends another is taken.
func TestImportsAtOnceAreBounded(t *testing.T) {
	f := newAPIFixture(t)
	url := fmt.Sprintf("%s/api/v1/domains/%d/recipients/import", f.srv.URL, f.domA.ID)
	post := func(body io.Reader) (*http.Response, error) {
		req, err := http.NewRequest("POST", url, body)
		if err != nil {
			return nil, err
		}
		req.Header.Set("Authorization", "Bearer "+f.tokens["own"])
		return f.srv.Client().Do(req)
	}
	// Imports whose bodies never end hold their slots while being read.
	type held struct {
		w    *io.PipeWriter
		done chan int
	}
	var slow []held
	for range maxConcurrentImports {
		r, w := io.Pipe()
		h := held{w, make(chan int, 1)}
		go func() {
			resp, err := post(r)
			if err != nil {
				h.done <- 0
				return
			}
			io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			h.done <- resp.StatusCode
		}()
		if _, err := io.WriteString(w, `{"recipients":["slow1"`); err != nil {
			t.Fatal(err)
		}
		slow = append(slow, h)
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		code, out := f.do("own", "POST", fmt.Sprintf("/api/v1/domains/%d/recipients/import", f.domA.ID), `{"recipients":["quick"]}`)
		if code == http.StatusTooManyRequests {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("with %d imports being read, another got %d %s, want 429", maxConcurrentImports, code, out)
		}
		time.Sleep(20 * time.Millisecond)
	}
	for i, h := range slow {
		io.WriteString(h.w, `]}`)
		h.w.Close()
		if code := <-h.done; code != http.StatusOK {
			t.Errorf("held import %d: status %d, want 200", i, code)
		}
	}
	if code, out := f.do("own", "POST", fmt.Sprintf("/api/v1/domains/%d/recipients/import", f.domA.ID), `{"recipients":["after"]}`); code != http.StatusOK {
		t.Errorf("after the held imports ended: %d %s, want 200", code, out)
	}
	if _, err := f.svc.GetRecipient(t.Context(), admin.Operator("test"), f.domA.ID, "slow1"); err != nil {
		t.Errorf("the held import was not stored: %v", err)
	}
}
