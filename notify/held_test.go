package notify

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/mxgrid/mxgrid/quarantine"
	"github.com/mxgrid/mxgrid/tenant"
)

type items []quarantine.Item

func (l items) List(_ context.Context, f quarantine.Filter) ([]quarantine.Item, error) {
	if f.Before != 0 {
		return nil, nil
	}
	return l, nil
}

type domains map[string]*tenant.Domain

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
	d := &Digests{items: held, domains: domains{"a.example": {Name: "a.example", ID: 7, CustomerID: 3}},
		cfg: DefaultConfig(), maxRunItems: maxRunItems}
	got, _, err := d.held(context.Background(), nil)
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
			d := &Digests{items: held, domains: domains{"a.example": {Name: "a.example", ID: 7, CustomerID: 3}},
				cfg: Config{From: "digest@mx.example", LinkTTL: time.Hour, MaxPerDomain: 1}, maxRunItems: maxRunItems,
				keys: [][]byte{[]byte("k")}, baseURL: "https://mx.example", hostname: "mx.example", now: time.Now}
			got, _, err := d.held(context.Background(), nil)
			if err != nil {
				t.Fatal(err)
			}
			if len(got["bob@a.example"]) > maxDigestItems+1 {
				t.Errorf("the job holds %d of bob's items, want at most %d", len(got["bob@a.example"]), maxDigestItems+1)
			}
			hdr, body := readDigest(t, d.compose("bob@a.example", "R", got["bob@a.example"]))
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
