package panel

import (
	"errors"
	"net/http"
	"strconv"
	"strings"

	"github.com/mxgrid/mxgrid/admin"
	"github.com/mxgrid/mxgrid/quarantine"
	"github.com/mxgrid/mxgrid/quarantine/preview"
	"github.com/mxgrid/mxgrid/tenant"
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
	// The API's parser: a bad domain_id or state is refused, not dropped,
	// which listed the whole quarantine in place of one domain's.
	f, errs := quarantine.ParseQuery(req.r.URL.Query(), quarantinePage)
	if f.Limit == 0 {
		f.Limit = quarantinePage
	}
	if f.State == "" {
		f.State = quarantine.StateHeld
	}
	search := readSearch(req)
	var items []quarantine.Item
	if search.refused == nil && errs == nil {
		done, err := p.svc.BeginSearch(req.r.Context(), req.sess.P)
		if err != nil {
			return err
		}
		defer done()
		if items, err = p.svc.ListQuarantine(req.r.Context(), req.sess.P, f); err != nil {
			return err
		}
	}
	data := quarantineData{Items: items, Search: f.Search, State: string(f.State), DomainID: f.DomainID, Customer: f.CustomerID}
	if len(items) == f.Limit {
		nq := req.r.URL.Query()
		nq.Set("after", strconv.FormatInt(items[len(items)-1].ID, 10))
		data.NextURL = "/panel/quarantine?" + nq.Encode()
	}
	code, msg, fe := http.StatusOK, "", tenant.FieldErrors(nil)
	if errs != nil {
		fe = errs
		code, msg = http.StatusBadRequest, "This list's address is not valid ("+strings.TrimPrefix(fe.Error(), "invalid input: ")+")."
	}
	code, msg, fe = search.show(code, msg, fe)
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
	var pv preview.Preview
	it, err := p.svc.OpenQuarantined(req.r.Context(), req.sess.P, id, func(_ quarantine.Item, msg []byte) { pv = preview.Of(msg) })
	if err != nil {
		return err
	}
	p.render(req, http.StatusOK, "quarantined", page{Title: "Quarantined message", Nav: "quarantine",
		Data: quarantinedData{Item: it, Preview: pv}})
	return nil
}

func (p *Panel) releaseQuarantined(req *request) error {
	id, err := pathID(req.r)
	if err != nil {
		return err
	}
	allow := req.r.PostFormValue("allow") == "1"
	quarantine.AwaitRelease(req.w)
	it, err := p.svc.ReleaseQuarantined(req.r.Context(), req.sess.P, id, allow)
	notice := "released"
	if allow {
		notice = "allowed"
	}
	pending, unallowed := errors.Is(err, quarantine.ErrRecordPending), errors.Is(err, admin.ErrAllowNotSaved)
	if pending || unallowed {
		// Shown here, not after a redirect: the message's page reads the
		// store, which may not answer; and shown as the store's outage,
		// "try again later", it hid that the message was delivered.
		if unallowed {
			notice = "released"
		}
		text := notices[notice]
		if pending {
			text += " " + recordPendingNotice
		}
		if unallowed {
			text += " " + senderNotAllowedNotice
		}
		p.render(req, http.StatusOK, "quarantined", page{Title: "Quarantined message", Nav: "quarantine",
			Notice: text, Data: quarantinedData{Item: it}})
		return nil
	}
	if err != nil {
		return err
	}
	return redirect(req, "/panel/quarantine/"+strconv.FormatInt(id, 10), notice)
}

const (
	recordPendingNotice    = "The database did not answer to record the release; this node records it when it answers again, and until then the message reads as being released."
	senderNotAllowedNotice = "Its sender could not be put on the domain's allow list: add it on the domain's page (do not release the message again)."
)

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
