package notify

import (
	"context"
	"slices"
	"testing"

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
	d := &Digests{items: held, domains: domains{"a.example": {Name: "a.example", ID: 7, CustomerID: 3}}}
	got, err := d.held(context.Background())
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
