package panel

import (
	"net/http"
	"strconv"

	"github.com/mxgrid/mxgrid/quarantine"
	"github.com/mxgrid/mxgrid/quarantine/preview"
)

// The quarantine pages: a list per domain or customer with search, a safe
// preview (headers and text only: the HTML is never rendered, nothing
// remote is fetched), release, release and allow the sender, delete.

type quarantineData struct {
	Items              []quarantine.Item
	Search, State      string
	DomainID, Customer int64
	NextURL            string
}

const quarantinePage = 50

func (p *Panel) quarantineList(req *request) error {
	q := req.r.URL.Query()
	num := func(k string) int64 {
		n, _ := strconv.ParseInt(q.Get(k), 10, 64)
		return max(n, 0)
	}
	search := readSearch(req)
	f := quarantine.Filter{DomainID: num("domain_id"), CustomerID: num("customer_id"), Search: search.Q, Before: num("after"), Limit: quarantinePage}
	switch st := quarantine.State(q.Get("state")); st {
	case quarantine.StateHeld, quarantine.StateReleased:
		f.State = st
	case "":
		f.State = quarantine.StateHeld
	}
	var items []quarantine.Item
	if search.refused == nil {
		var err error
		if items, err = p.svc.ListQuarantine(req.r.Context(), req.sess.P, f); err != nil {
			return err
		}
	}
	data := quarantineData{Items: items, Search: f.Search, State: string(f.State), DomainID: f.DomainID, Customer: f.CustomerID}
	if len(items) == quarantinePage {
		nq := req.r.URL.Query()
		nq.Set("after", strconv.FormatInt(items[len(items)-1].ID, 10))
		data.NextURL = "/panel/quarantine?" + nq.Encode()
	}
	code, msg, fe := search.show(http.StatusOK, "", nil)
	p.render(req, code, "quarantine", page{Title: "Quarantine", Nav: "quarantine", Error: msg, Fields: fe, Data: data})
	return nil
}

type quarantinedData struct {
	Item    quarantine.Item
	Preview preview.Preview
}

func (p *Panel) quarantined(req *request) error {
	id, err := pathID(req.r)
	if err != nil {
		return err
	}
	it, msg, err := p.svc.GetQuarantined(req.r.Context(), req.sess.P, id)
	if err != nil {
		return err
	}
	p.render(req, http.StatusOK, "quarantined", page{Title: "Quarantined message", Nav: "quarantine",
		Data: quarantinedData{Item: it, Preview: preview.Of(msg)}})
	return nil
}

func (p *Panel) releaseQuarantined(req *request) error {
	id, err := pathID(req.r)
	if err != nil {
		return err
	}
	allow := req.r.PostFormValue("allow") == "1"
	if _, err := p.svc.ReleaseQuarantined(req.r.Context(), req.sess.P, id, allow); err != nil {
		return err
	}
	notice := "released"
	if allow {
		notice = "allowed"
	}
	return redirect(req, "/panel/quarantine/"+strconv.FormatInt(id, 10), notice)
}

func (p *Panel) deleteQuarantined(req *request) error {
	id, err := pathID(req.r)
	if err != nil {
		return err
	}
	if err := p.svc.DeleteQuarantined(req.r.Context(), req.sess.P, id); err != nil {
		return err
	}
	return redirect(req, "/panel/quarantine", "deleted")
}
