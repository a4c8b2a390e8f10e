package web

import (
	"context"
	"fmt"
	"slices"
	"testing"

	"github.com/mxgrid/mxgrid/admin"
	"github.com/mxgrid/mxgrid/quarantine"
	"github.com/mxgrid/mxgrid/store"
	"github.com/mxgrid/mxgrid/tracking"
)

// deliveries is a customer's server that takes every message and counts.
type deliveries struct{ n int }

func (d *deliveries) Deliver(context.Context, quarantine.HeldDomain, string, []string, []byte) (string, error) {
	d.n++
	return "250 2.0.0 queued", nil
}

// TestAPIReleaseAndAllowSender: "release and allow the sender" puts the
// sender on the domain's allow list and delivers, or, when the sender
// cannot go on an allow list (a quoted local part with a space), does
// neither and says so. It delivered first and then answered 400: the
// message was out, the list unchanged, and a retry answered 409.
func TestAPIReleaseAndAllowSender(t *testing.T) {
	for _, tt := range []struct {
		name, sender string
		code         int
		delivered    bool
	}{
		{"plain sender", "News@Sender.example", 200, true},
		{"sender no allow list can hold", `"a b"@sender.example`, 400, false},
	} {
		t.Run(tt.name, func(t *testing.T) {
			server := &deliveries{}
			var q *quarantine.Service
			f := newAPIFixture(t, func(o *admin.ServiceOptions) {
				q = quarantine.New(quarantine.DefaultConfig(), o.Activity.(*store.Store), server, nil)
				o.Quarantine = q
			})
			ids, err := q.Hold(context.Background(), quarantine.Item{Domain: "a.example", DomainID: f.domA.ID, CustomerID: f.custA.ID,
				Sender: tt.sender, Recipients: []string{"alice@a.example"}}, []byte("Subject: x\r\n\r\nx\r\n"))
			if err != nil {
				t.Fatal(err)
			}
			code, out := f.do("own", "POST", fmt.Sprintf("/api/v1/quarantine/%d/release", ids[0]), map[string]any{"allow_sender": true})
			if code != tt.code || (server.n == 1) != tt.delivered {
				t.Fatalf("release and allow: %d %s, delivered %d; want %d, delivered %v", code, out, server.n, tt.code, tt.delivered)
			}
			it, _, err := q.Get(context.Background(), tracking.Scope{Operator: true}, ids[0])
			if err != nil || (it.State == quarantine.StateReleased) != tt.delivered {
				t.Errorf("state %s, %v; want released %v", it.State, err, tt.delivered)
			}
			d, err := f.svc.GetDomain(context.Background(), f.op, f.domA.ID)
			if err != nil || slices.Contains(d.Policy.SenderAllow, "news@sender.example") != tt.delivered {
				t.Errorf("allow list %v, %v", d.Policy.SenderAllow, err)
			}
		})
	}
}
