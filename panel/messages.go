package panel

import (
	"net/http"
	"net/url"
	"time"

	"github.com/mxgrid/mxgrid/scanner"
	"github.com/mxgrid/mxgrid/tenant"
	"github.com/mxgrid/mxgrid/tracking"
)

// The message log: "where is my mail?" for a reseller's support desk. The
// search is tracking.ParseQuery's, scoped by the admin service to the
// logged-in reseller; each record has a permalink page.

// waitingWindow is how far back the panel's deferral view looks.
const waitingWindow = 12 * time.Hour

type messagesData struct {
	Query   url.Values
	Since   string
	Records []tracking.Record
	NextURL string
	Waiting []tracking.Waiting
}

func (p *Panel) messages(req *request) error {
	ctx := req.r.Context()
	q := req.r.URL.Query()
	if q.Get("since") == "" {
		q.Set("since", "24h")
	}
	f, errs := tracking.ParseQuery(q, p.now())
	data := messagesData{Query: q, Since: q.Get("since")}
	pg := page{Title: "Message log", Nav: "messages", Data: &data}
	if errs != nil {
		pg.Fields = tenant.FieldErrors(errs)
		pg.Error = "Some search fields are not valid."
		p.render(req, http.StatusBadRequest, "messages", pg)
		return nil
	}
	// One place for the search and the deferral view: the page holds both.
	done, err := p.svc.BeginSearch(req.r.Context(), req.sess.P)
	if err != nil {
		return err
	}
	defer done()
	recs, next, err := p.svc.SearchMessages(ctx, req.sess.P, f)
	if err != nil {
		return err
	}
	data.Records = recs
	if !next.IsZero() {
		nq := url.Values{}
		for k, v := range q {
			nq[k] = v
		}
		nq.Set("cursor", next.String())
		data.NextURL = "/panel/messages?" + nq.Encode()
	}
	if data.Waiting, err = p.svc.WaitingMessages(ctx, req.sess.P, tracking.WaitingFilter{
		DomainID: f.DomainID, CustomerID: f.CustomerID, Since: p.now().Add(-waitingWindow),
	}); err != nil {
		return err
	}
	p.render(req, http.StatusOK, "messages", pg)
	return nil
}

type messageData struct {
	Rec     tracking.Record
	Symbols []symbolView
}

type symbolView struct{ Name, Meaning string }

func (p *Panel) message(req *request) error {
	id, err := pathID(req.r)
	if err != nil {
		return err
	}
	rec, err := p.svc.GetMessage(req.r.Context(), req.sess.P, id)
	if err != nil {
		return err
	}
	data := messageData{Rec: rec}
	for _, s := range rec.Symbols {
		data.Symbols = append(data.Symbols, symbolView{Name: s, Meaning: scanner.SymbolHelp(s)})
	}
	p.render(req, http.StatusOK, "message", page{Title: "Message " + rec.QueueID, Nav: "messages", Data: data})
	return nil
}

// deferText says a deferral's reason in words.
func deferText(r tracking.DeferReason) string {
	switch r {
	case tracking.DeferUnreachable:
		return "The customer's server could not be reached; the sender keeps the message and retries."
	case tracking.DeferTimeout:
		return "The customer's server stopped answering during the delivery; the sender retries."
	case tracking.DeferMaybeDelivered:
		return "The customer's server was lost after the whole message had been sent to it, before it answered: it may have taken the message, so the sender's retry may deliver it a second time."
	case tracking.DeferCustomerTempfail:
		return "The customer's server refused for now (its own temporary error, quoted above); the sender retries."
	case tracking.DeferScan:
		return "A check could not run and its policy is to defer rather than let the message through unchecked; the sender retries."
	case tracking.DeferLocal:
		return "This node could not take the message at that moment; the sender retries."
	case tracking.DeferClientGone:
		return "The sending server did not complete the transfer of the message (it closed the connection, gave up, or was too slow); nothing was delivered, and it keeps the message to retry."
	}
	return string(r)
}
