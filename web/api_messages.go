package web

import (
	"net/http"
	"time"

	"github.com/mxgrid/mxgrid/admin"
	"github.com/mxgrid/mxgrid/tenant"
	"github.com/mxgrid/mxgrid/tracking"
)

// messageJSON is one message record in the API: the stored record with
// stable JSON names, times in RFC 3339 and the duration in milliseconds.
type messageJSON struct {
	ID          int64     `json:"id"`
	Time        time.Time `json:"time"`
	Node        string    `json:"node"`
	QueueID     string    `json:"queue_id"`
	ClientIP    string    `json:"client_ip,omitempty"`
	HELO        string    `json:"helo"`
	Sender      string    `json:"sender"`
	Recipient   string    `json:"recipient"`
	Domain      string    `json:"domain"`
	DomainID    int64     `json:"domain_id"`
	CustomerID  int64     `json:"customer_id"`
	Size        int64     `json:"size"`
	MessageID   string    `json:"message_id,omitempty"`
	Subject     string    `json:"subject,omitempty"`
	Action      string    `json:"action,omitempty"`
	Reason      string    `json:"reason,omitempty"`
	Score       float64   `json:"score"`
	Symbols     []string  `json:"symbols,omitempty"`
	Status      string    `json:"status"`
	ReplyCode   int       `json:"reply_code"`
	Reply       string    `json:"reply"`
	Downstream  string    `json:"downstream_reply,omitempty"`
	Reference   string    `json:"reference,omitempty"`
	DeferReason string    `json:"defer_reason,omitempty"`
	TLSIn       bool      `json:"tls_in"`
	TLSOut      bool      `json:"tls_out"`
	DurationMS  int64     `json:"duration_ms"`
}

func toMessageJSON(r tracking.Record) messageJSON {
	m := messageJSON{
		ID: r.ID, Time: r.Time, Node: r.Node, QueueID: r.QueueID, HELO: r.HELO, Sender: r.Sender,
		Recipient: r.Recipient, Domain: r.Domain, DomainID: r.DomainID, CustomerID: r.CustomerID, Size: r.Size,
		MessageID: r.MessageID, Subject: r.Subject, Action: r.Action, Reason: string(r.Reason), Score: r.Score, Symbols: r.Symbols,
		Status: string(r.Status), ReplyCode: r.ReplyCode, Reply: r.Reply, Downstream: r.Downstream,
		Reference: r.Reference, DeferReason: string(r.DeferReason), TLSIn: r.TLSIn, TLSOut: r.TLSOut,
		DurationMS: r.Duration.Milliseconds(),
	}
	if r.ClientIP.IsValid() {
		m.ClientIP = r.ClientIP.String()
	}
	return m
}

// messagePage is a search answer; NextCursor, when set, is the cursor of
// the next (older) page.
type messagePage struct {
	Items      []messageJSON `json:"items"`
	NextCursor string        `json:"next_cursor,omitempty"`
}

// searchMessages answers GET /api/v1/messages with the filters of
// tracking.ParseQuery.
func (a *AdminAPI) searchMessages(w http.ResponseWriter, r *http.Request, p admin.Principal) error {
	f, errs := tracking.ParseQuery(r.URL.Query(), time.Now())
	if errs != nil {
		return tenant.FieldErrors(errs)
	}
	done, err := a.svc.BeginSearch(r.Context(), p)
	if err != nil {
		return err
	}
	defer done()
	recs, next, err := a.svc.SearchMessages(r.Context(), p, f)
	if err != nil {
		return err
	}
	pg := messagePage{Items: make([]messageJSON, len(recs)), NextCursor: next.String()}
	for i, rec := range recs {
		pg.Items[i] = toMessageJSON(rec)
	}
	writeJSON(w, http.StatusOK, pg)
	return nil
}

// getMessage answers GET /api/v1/messages/{id}.
func (a *AdminAPI) getMessage(w http.ResponseWriter, r *http.Request, p admin.Principal) error {
	id, err := pathID(r)
	if err != nil {
		return err
	}
	rec, err := a.svc.GetMessage(r.Context(), p, id)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, toMessageJSON(rec))
	return nil
}

// waitingJSON is one message a sender is still retrying.
type waitingJSON struct {
	Domain     string    `json:"domain"`
	DomainID   int64     `json:"domain_id"`
	CustomerID int64     `json:"customer_id"`
	Recipient  string    `json:"recipient"`
	Sender     string    `json:"sender"`
	MessageID  string    `json:"message_id,omitempty"`
	FirstSeen  time.Time `json:"first_seen"`
	LastSeen   time.Time `json:"last_seen"`
	Attempts   int       `json:"attempts"`
	LastReason string    `json:"last_reason"`
	LastReply  string    `json:"last_reply"`
}

// defaultDeferralWindow is the deferral view's look-back unless `since`
// says otherwise.
const defaultDeferralWindow = 12 * time.Hour

// listDeferrals answers GET /api/v1/deferrals: per message, the mail we
// deferred that its sender has not yet delivered on a retry.
func (a *AdminAPI) listDeferrals(w http.ResponseWriter, r *http.Request, p admin.Principal) error {
	// The search's other filters are refused as any parameter the route
	// does not document (takesOnly): a client filtering by recipient would
	// take every deferral for that recipient's.
	now := time.Now()
	f, errs := tracking.ParseQuery(r.URL.Query(), now)
	if errs != nil {
		return tenant.FieldErrors(errs)
	}
	done, err := a.svc.BeginSearch(r.Context(), p)
	if err != nil {
		return err
	}
	defer done()
	wf := tracking.WaitingFilter{DomainID: f.DomainID, CustomerID: f.CustomerID, Since: f.Since}
	if wf.Since.IsZero() {
		wf.Since = now.Add(-defaultDeferralWindow)
	}
	ws, err := a.svc.WaitingMessages(r.Context(), p, wf)
	if err != nil {
		return err
	}
	out := struct {
		Items []waitingJSON `json:"items"`
	}{Items: make([]waitingJSON, len(ws))}
	for i, x := range ws {
		out.Items[i] = waitingJSON{Domain: x.Domain, DomainID: x.DomainID, CustomerID: x.CustomerID, Recipient: x.Recipient,
			Sender: x.Sender, MessageID: x.MessageID, FirstSeen: x.FirstSeen, LastSeen: x.LastSeen, Attempts: x.Attempts,
			LastReason: string(x.LastReason), LastReply: x.LastReply}
	}
	writeJSON(w, http.StatusOK, out)
	return nil
}
