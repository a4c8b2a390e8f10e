package notify

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/mxgrid/mxgrid/quarantine"
	"github.com/mxgrid/mxgrid/tenant"
	"github.com/mxgrid/mxgrid/tracking"
)

type items []quarantine.Item

func (l items) List(_ context.Context, f quarantine.Filter) ([]quarantine.Item, error) {
	if f.Before != 0 {
		return nil, nil
	}
	return l, nil
}

type domains map[string]*tenant.Domain

// noOptOuts is a store no recipient opted out of, for the tests of what
// a digest lists (its other methods are not called).
type noOptOuts struct{ Store }

func (noOptOuts) OptedOut(context.Context, int64, int64, string) (bool, error) { return false, nil }

func (d domains) Lookup(name string) (*tenant.Domain, bool) {
	dom, ok := d[name]
	return dom, ok
}

// TestDigestListsOnlyMailOfTheDomainAsItIsNow: a recipient's digest lists
// only what was held by the domain (by id and customer) that now serves its
// name. A name re-created by another tenant, or a domain moved to another
// customer, has a new mailbox owner, who must not read the old tenant's
// held senders and subjects under their own reseller's name (a release of
// them delivers nothing anyway).
func TestDigestListsOnlyMailOfTheDomainAsItIsNow(t *testing.T) {
	held := items{
		{ID: 1, Domain: "a.example", DomainID: 7, CustomerID: 3, Recipients: []string{"Bob@a.example"}, Subject: "now"},
		{ID: 2, Domain: "a.example", DomainID: 5, CustomerID: 2, Recipients: []string{"bob@a.example"}, Subject: "re-created"},
		{ID: 3, Domain: "a.example", DomainID: 7, CustomerID: 1, Recipients: []string{"bob@a.example"}, Subject: "moved"},
		{ID: 4, Domain: "gone.example", DomainID: 9, CustomerID: 3, Recipients: []string{"eve@gone.example"}, Subject: "deleted"},
	}
	d := &Digests{store: noOptOuts{}, items: held, domains: domains{"a.example": {Name: "a.example", ID: 7, CustomerID: 3}},
		cfg: DefaultConfig(), maxRunItems: maxRunItems}
	got, _, _, err := d.held(context.Background(), nil)
	if err != nil {
		t.Fatal(err)
	}
	var subjects []string
	for rcpt, its := range got {
		for _, it := range its {
			subjects = append(subjects, rcpt+" "+it.Subject)
		}
	}
	if want := []string{"bob@a.example now"}; !slices.Equal(subjects, want) {
		t.Errorf("digests list %q, want %q", subjects, want)
	}
}

// TestDigestListsItsNewestOnly: a recipient someone floods with held spam
// gets a digest of the newest maxDigestItems, saying there are more, and
// the job holds no more than that of theirs. Before, the digest listed
// every held message (a domain holds up to a gigabyte: hundreds of
// thousands), built whole in memory and past any smarthost's size limit,
// so the flood also cost them the digest.
func TestDigestListsItsNewestOnly(t *testing.T) {
	for _, tc := range []struct {
		name  string
		n     int
		links int
		more  bool
	}{
		{"a few", 3, 3, false},
		{"exactly the bound", maxDigestItems, maxDigestItems, false},
		{"a flood", 5 * maxDigestItems, maxDigestItems, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var held items
			for i := tc.n; i > 0; i-- { // newest (highest id) first, as List pages
				held = append(held, quarantine.Item{ID: int64(i), Time: time.Now(), Domain: "a.example", DomainID: 7, CustomerID: 3,
					Recipients: []string{"bob@a.example"}, Sender: "s@x.example", Subject: fmt.Sprintf("spam #%d.", i)})
			}
			d := &Digests{store: noOptOuts{}, items: held, domains: domains{"a.example": {Name: "a.example", ID: 7, CustomerID: 3}},
				cfg: Config{From: "digest@mx.example", LinkTTL: time.Hour, MaxPerDomain: 1}, maxRunItems: maxRunItems,
				keys: [][]byte{[]byte("k")}, baseURL: "https://mx.example", hostname: "mx.example", now: time.Now}
			got, _, _, err := d.held(context.Background(), nil)
			if err != nil {
				t.Fatal(err)
			}
			if len(got["bob@a.example"]) > maxDigestItems+1 {
				t.Errorf("the job holds %d of bob's items, want at most %d", len(got["bob@a.example"]), maxDigestItems+1)
			}
			hdr, body := readDigest(t, d.compose("bob@a.example", "R", got["bob@a.example"], false))
			if n := strings.Count(body, "/q/release/"); n != tc.links {
				t.Errorf("the digest lists %d messages, want %d", n, tc.links)
			}
			if newest := fmt.Sprintf("spam #%d.", tc.n); !strings.Contains(body, newest) {
				t.Errorf("the digest lacks the newest, %q", newest)
			}
			if oldest := fmt.Sprintf("spam #%d.", tc.n-tc.links); tc.more && strings.Contains(body, oldest) {
				t.Errorf("the digest lists %q, past the newest %d", oldest, tc.links)
			}
			said := strings.Contains(body, "your provider can show you the others")
			if said != tc.more || strings.Contains(hdr.Get("Subject"), "more than") != tc.more {
				t.Errorf("the digest says there are more: %v, subject %q; want %v", said, hdr.Get("Subject"), tc.more)
			}
		})
	}
}

// TestLookAlikeMailboxesKeptApart: a local part that holds a character
// outside ASCII folding into ASCII (the Kelvin sign into k, the long s
// into s) is another mailbox, as recipient lists hold it
// (mailaddr.FoldLocal). Digests grouped and links matched recipients with
// strings.ToLower and EqualFold: mail held for "\u212aate@a.example" was
// listed, sender and subject, in kate's digest, kate's link released it,
// and its opt-out link opted kate out. ASCII case still folds.
func TestLookAlikeMailboxesKeptApart(t *testing.T) {
	const kelvin, longS = "\u212aate@a.example", "\u017fam@a.example"
	held := items{
		{ID: 1, Domain: "a.example", DomainID: 7, CustomerID: 3, Recipients: []string{"Kate@a.example"}, State: quarantine.StateHeld},
		{ID: 2, Domain: "a.example", DomainID: 7, CustomerID: 3, Recipients: []string{kelvin}, State: quarantine.StateHeld},
		{ID: 3, Domain: "a.example", DomainID: 7, CustomerID: 3, Recipients: []string{"sam@A.example"}, State: quarantine.StateHeld},
		{ID: 4, Domain: "a.example", DomainID: 7, CustomerID: 3, Recipients: []string{longS}, State: quarantine.StateHeld},
	}
	d := &Digests{store: noOptOuts{}, items: held, domains: domains{"a.example": {Name: "a.example", ID: 7, CustomerID: 3}},
		cfg: DefaultConfig(), maxRunItems: maxRunItems}
	got, _, _, err := d.held(context.Background(), nil)
	if err != nil {
		t.Fatal(err)
	}
	byRcpt := map[string][]int64{}
	for rcpt, its := range got {
		for _, it := range its {
			byRcpt[rcpt] = append(byRcpt[rcpt], it.ID)
		}
	}
	want := map[string][]int64{"kate@a.example": {1}, kelvin: {2}, "sam@a.example": {3}, longS: {4}}
	if fmt.Sprint(byRcpt) != fmt.Sprint(want) {
		t.Errorf("digests %v, want %v", byRcpt, want)
	}

	key := bytes.Repeat([]byte("k"), 32)
	opts := &optOuts{}
	mux := http.NewServeMux()
	NewLinks([][]byte{key}, held, opts, d.domains, nil, nil, nil, nil).Mount(func(p string, h http.Handler) { mux.Handle(p, h) })
	for _, tc := range []struct {
		item      int64
		recipient string // the link's
		code      int
	}{
		{2, "kate@a.example", http.StatusNotFound},
		{1, kelvin, http.StatusNotFound},
		{4, "sam@a.example", http.StatusNotFound},
		{2, kelvin, http.StatusOK},
		{1, "KATE@a.example", http.StatusOK},
		{3, "sam@a.example", http.StatusOK},
	} {
		tok := Sign(Link{Action: ActionRelease, ItemID: tc.item, Recipient: tc.recipient, Expires: time.Now().Add(time.Hour)}, key)
		rec := httptest.NewRecorder()
		mux.ServeHTTP(rec, httptest.NewRequest("GET", "/q/release/"+tok, nil))
		if rec.Code != tc.code {
			t.Errorf("%s's link for item %d: %d, want %d", tc.recipient, tc.item, rec.Code, tc.code)
		}
	}
	tok := Sign(Link{Action: ActionOptOut, ItemID: 7, CustomerID: 3, Recipient: kelvin, Expires: time.Now().Add(time.Hour)}, key)
	mux.ServeHTTP(httptest.NewRecorder(), httptest.NewRequest("POST", "/q/optout/"+tok, nil))
	if !slices.Equal(opts.got, []string{kelvin}) {
		t.Errorf("the opt-out link of %q opted out %q", kelvin, opts.got)
	}
}

// Item finds an item of the list, for the link handler.
func (l items) Item(_ context.Context, _ tracking.Scope, id int64) (quarantine.Item, error) {
	for _, it := range l {
		if it.ID == id {
			return it, nil
		}
	}
	return quarantine.Item{}, tenant.ErrNotFound
}

func (l items) Release(context.Context, tracking.Scope, int64, string) (quarantine.Item, string, error) {
	return quarantine.Item{}, "", errors.New("this test releases nothing")
}

type optOuts struct{ got []string }

func (o *optOuts) OptOut(_ context.Context, _, _ int64, rcpt string, _ time.Time) error {
	o.got = append(o.got, rcpt)
	return nil
}
