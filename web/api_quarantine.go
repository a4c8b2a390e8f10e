package web

import (
	"errors"
	"net/http"
	"strings"
	"time"

	"github.com/mxgrid/mxgrid/admin"
	"github.com/mxgrid/mxgrid/quarantine"
	"github.com/mxgrid/mxgrid/quarantine/preview"
	"github.com/mxgrid/mxgrid/tenant"
)

// quarantineJSON is one held message in the API.
type quarantineJSON struct {
	ID         int64      `json:"id"`
	Time       time.Time  `json:"time"`
	QueueID    string     `json:"queue_id"`
	Domain     string     `json:"domain"`
	DomainID   int64      `json:"domain_id"`
	CustomerID int64      `json:"customer_id"`
	Sender     string     `json:"sender"`
	Recipients []string   `json:"recipients"`
	Subject    string     `json:"subject"`
	MessageID  string     `json:"message_id,omitempty"`
	Size       int64      `json:"size"`
	Score      float64    `json:"score"`
	Symbols    []string   `json:"symbols,omitempty"`
	State      string     `json:"state"`
	ReleasedBy string     `json:"released_by,omitempty"`
	ReleasedAt *time.Time `json:"released_at,omitempty"`
	// Preview is set on the single-item answer only.
	Preview *preview.Preview `json:"preview,omitempty"`
}

func toQuarantineJSON(it quarantine.Item) quarantineJSON {
	q := quarantineJSON{ID: it.ID, Time: it.Time, QueueID: it.QueueID, Domain: it.Domain, DomainID: it.DomainID,
		CustomerID: it.CustomerID, Sender: it.Sender, Recipients: it.Recipients, Subject: it.Subject, MessageID: it.MessageID,
		Size: it.Size, Score: it.Score, Symbols: it.Symbols, State: string(it.State), ReleasedBy: it.ReleasedBy}
	if !it.ReleasedAt.IsZero() {
		q.ReleasedAt = &it.ReleasedAt
	}
	return q
}

// listQuarantine answers GET /api/v1/quarantine, filtered as
// quarantine.ParseQuery reads the query; limit defaults to 100.
func (a *AdminAPI) listQuarantine(w http.ResponseWriter, r *http.Request, p admin.Principal) error {
	f, errs := quarantine.ParseQuery(r.URL.Query(), admin.MaxPageSize)
	if errs != nil {
		return tenant.FieldErrors(errs)
	}
	if f.Limit == 0 {
		f.Limit = 100
	}
	done, err := a.svc.BeginSearch(r.Context(), p)
	if err != nil {
		return err
	}
	defer done()
	items, err := a.svc.ListQuarantine(r.Context(), p, f)
	if err != nil {
		return err
	}
	pg := page[quarantineJSON]{Items: make([]quarantineJSON, len(items))}
	for i, it := range items {
		pg.Items[i] = toQuarantineJSON(it)
	}
	if len(items) > 0 && len(items) == f.Limit {
		pg.NextAfter = items[len(items)-1].ID
	}
	writeJSON(w, http.StatusOK, pg)
	return nil
}

func (a *AdminAPI) getQuarantined(w http.ResponseWriter, r *http.Request, p admin.Principal) error {
	id, err := pathID(r)
	if err != nil {
		return err
	}
	var pv preview.Preview
	it, err := a.svc.OpenQuarantined(r.Context(), p, id, func(_ quarantine.Item, msg []byte) { pv = preview.Of(msg) })
	if err != nil {
		return err
	}
	out := toQuarantineJSON(it)
	out.Preview = &pv
	writeJSON(w, http.StatusOK, out)
	return nil
}

// releaseBody is POST .../release's optional body.
type releaseBody struct {
	AllowSender bool `json:"allow_sender"`
}

func (a *AdminAPI) releaseQuarantined(w http.ResponseWriter, r *http.Request, p admin.Principal) error {
	id, err := pathID(r)
	if err != nil {
		return err
	}
	var body releaseBody
	if r.ContentLength != 0 {
		if err := decode(w, r, maxBody, &body); err != nil {
			return err
		}
	}
	quarantine.AwaitRelease(w)
	it, err := a.svc.ReleaseQuarantined(r.Context(), p, id, body.AllowSender)
	out := releasedJSON{quarantineJSON: toQuarantineJSON(it)}
	// Delivered, whatever else failed: answered as the store's outage
	// (503, try again), the caller took a message in the mailbox for one
	// not released.
	var notices []string
	if errors.Is(err, quarantine.ErrRecordPending) {
		out.RecordPending = true
		notices = append(notices, recordPendingNotice)
	}
	if errors.Is(err, admin.ErrAllowNotSaved) {
		out.SenderNotAllowed = true
		notices = append(notices, senderNotAllowedNotice)
	}
	if notices != nil {
		out.Notice = "the message was delivered; " + strings.Join(notices, "; ")
	} else if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, out)
	return nil
}

// releasedJSON is a release's answer: the item, and what of the release
// waits or failed though the message was delivered.
type releasedJSON struct {
	quarantineJSON
	RecordPending    bool   `json:"record_pending,omitempty"`
	SenderNotAllowed bool   `json:"sender_not_allowed,omitempty"`
	Notice           string `json:"notice,omitempty"`
}

const (
	recordPendingNotice    = "the database did not answer to record the release, and this node records it when the database answers again (until then the message reads as being released)"
	senderNotAllowedNotice = "its sender could not be put on the domain's allow list: add it there again (the release is not to be repeated)"
)

func (a *AdminAPI) deleteQuarantined(w http.ResponseWriter, r *http.Request, p admin.Principal) error {
	id, err := pathID(r)
	if err != nil {
		return err
	}
	if err := a.svc.DeleteQuarantined(r.Context(), p, id); err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}
