package tenant

import (
	"cmp"
	"fmt"
	"log/slog"
	"maps"
)

// hierarchy is what a node keeps of the store's tenant tree so that it can
// apply deltas: each reseller's policy, each customer (its reseller, policy
// and suspension), and which name each stored domain is served under.
type hierarchy struct {
	resellers map[int64]Reseller
	customers map[int64]Customer
	names     map[int64]string
}

func newHierarchy() *hierarchy {
	return &hierarchy{resellers: map[int64]Reseller{}, customers: map[int64]Customer{}, names: map[int64]string{}}
}

// apply returns the domains served after d (cur, the domains served
// before, is left as it is: snapshots in use are immutable) and the names
// whose entry changed. Every domain d carries is built, with its effective
// policy (domain over customer over reseller). A stored domain that does
// not build (a row restored from an old backup or edited by hand) is left
// out, loudly, and listed as unservable (its mail deferred): failing the
// whole load for it kept every other tenant's changes from every node. Config-file domains (Source "config") in cur
// win over stored ones of the same name, loudly: the config file is what
// the operator on this machine asked for.
func (h *hierarchy) apply(d Delta, cur *Snapshot, log *slog.Logger) (*Snapshot, []string) {
	resellers := make(map[int64]Reseller, len(d.Resellers))
	for _, r := range d.Resellers {
		resellers[r.ID] = r
	}
	customers := make(map[int64]Customer, len(d.Customers))
	for _, c := range d.Customers {
		customers[c.ID] = c
	}
	reseller := func(id int64) Reseller {
		if r, ok := resellers[id]; ok {
			return r
		}
		return h.resellers[id]
	}
	customer := func(id int64) Customer {
		if c, ok := customers[id]; ok {
			return c
		}
		return h.customers[id]
	}
	built := make([]*Domain, 0, len(d.Domains))
	var broken []DomainRecord
	for _, dr := range d.Domains {
		c := customer(dr.CustomerID)
		r := reseller(c.ResellerID)
		// A damaged customer or reseller leaves the domain's effective
		// policy unknown.
		if damaged := cmp.Or(dr.Damaged, c.Damaged, r.Damaged); damaged != "" {
			log.Error("stored domain, or its customer or reseller, is damaged; its mail is deferred", "domain", dr.Name, "id", dr.ID, "err", damaged)
			dr.Damaged = damaged
			broken = append(broken, dr)
			continue
		}
		// A suspended customer's domains and unproven ones are left out:
		// RCPT refuses them like unknown domains and nothing reaches the
		// customer's server.
		if c.Suspended || dr.Status == StatusPending {
			continue
		}
		// A status the store never writes (set by hand: "disabled") was
		// served as active: whoever set it meant something else.
		if dr.Status != StatusActive && dr.Status != "" {
			log.Error("stored domain has an unknown status; its mail is deferred", "domain", dr.Name, "id", dr.ID, "status", dr.Status)
			dr.Damaged = fmt.Sprintf("unknown status %q", dr.Status)
			broken = append(broken, dr)
			continue
		}
		dom, fe := newDomain(domainSpec{ID: dr.ID, CustomerID: dr.CustomerID, Source: "store",
			Name: dr.Name, Route: dr.Route, TLS: dr.TLS, Routes: dr.Routes,
			Known: d.Recipients[dr.ID], Policy: dr.Policy, Inherited: c.Policy.Over(r.Policy)})
		if len(fe) > 0 {
			// Dropped below like any domain the delta names, so its
			// earlier version is not served either.
			log.Error("stored domain is invalid; its mail is deferred", "domain", dr.Name, "id", dr.ID, "err", fe)
			dr.Damaged = fe.Error()
			broken = append(broken, dr)
			continue
		}
		built = append(built, dom)
	}

	maps.Copy(h.resellers, resellers)
	maps.Copy(h.customers, customers)
	for _, id := range d.RemovedResellers {
		delete(h.resellers, id)
	}
	for _, id := range d.RemovedCustomers {
		delete(h.customers, id)
	}
	next := &Snapshot{domains: map[string]*Domain{}, unservable: map[string]unservable{}}
	if cur != nil {
		maps.Copy(next.domains, cur.domains)
		maps.Copy(next.unservable, cur.unservable)
	}
	var touched []string
	// Every domain the delta names leaves first, so a rename (or a name
	// freed by one domain and taken by another) lands in any order.
	drop := func(id int64) {
		name, ok := h.names[id]
		if !ok {
			return
		}
		delete(h.names, id)
		if dom, ok := next.domains[name]; ok && dom.Source == "store" && dom.ID == id {
			delete(next.domains, name)
		}
		if u, ok := next.unservable[name]; ok && u.id == id {
			delete(next.unservable, name)
		}
		touched = append(touched, name)
	}
	for _, id := range d.RemovedDomains {
		drop(id)
	}
	for _, dr := range d.Domains {
		drop(dr.ID)
	}
	for _, dom := range built {
		if prev, ok := next.domains[dom.Name]; ok && prev.Source != "store" {
			log.Warn("domain is both in the config file and in the tenant store; the config file wins", "domain", dom.Name)
			continue
		}
		next.domains[dom.Name] = dom
		h.names[dom.ID] = dom.Name
		touched = append(touched, dom.Name)
	}
	for _, dr := range broken {
		name, err := NormalizeDomain(dr.Name)
		if err != nil {
			continue // no mail can name it
		}
		if _, ok := next.domains[name]; ok {
			continue // a config-file domain, or a valid one, serves the name
		}
		next.unservable[name] = unservable{id: dr.ID, reason: dr.Damaged}
		h.names[dr.ID] = name
		touched = append(touched, name)
	}
	return next, touched
}
