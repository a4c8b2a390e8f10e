package web

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"net/http"
	"reflect"
	"slices"
	"strings"
	"time"

	"github.com/mxgrid/mxgrid/admin"
	"github.com/mxgrid/mxgrid/tenant"
)

// Request bodies. Create requests use the same types as updates: on PATCH
// an absent field keeps its value, and a policy is merged field by field
// (policyPatch).

type resellerBody struct {
	Name   *string      `json:"name"`
	Policy *policyPatch `json:"policy"`
	// Quota sets the override's fields given (0 restores the default).
	// Only the operator may write a reseller at all.
	Quota *quotaBody `json:"quota"`
}

type quotaBody struct {
	Domains    *int64 `json:"domains"`
	Recipients *int64 `json:"recipients"`
}

type customerBody struct {
	Name       *string      `json:"name"`
	ResellerID *int64       `json:"reseller_id"`
	Policy     *policyPatch `json:"policy"`
}

type domainBody struct {
	Name       *string `json:"name"`
	CustomerID *int64  `json:"customer_id"`
	Route      *string `json:"route"`
	TLS        *string `json:"tls"`
	// Routes, when present, replace the whole list ([] removes every rule).
	Routes *[]tenant.RouteRule `json:"routes"`
	Policy *policyPatch        `json:"policy"`
}

// policyPatch is a policy as a request gives it, applied as a JSON merge
// patch (RFC 7396): a field given a value sets it, a field given null
// inherits again from the level above, and a field left out keeps its
// value. Replaced whole, a PATCH of one field (a tag score) silently
// dropped the rest: the allow and block lists, tag_action: quarantine.
type policyPatch struct {
	values tenant.Policy
	// given holds the keys the object names, value or null.
	given []string
}

func (p *policyPatch) UnmarshalJSON(raw []byte) error {
	// The outer decoder's checks (duplicate keys in any case, UTF-8,
	// size) have seen these bytes; unknown keys and types are ours.
	var keys map[string]json.RawMessage
	if err := json.Unmarshal(raw, &keys); err != nil {
		return err
	}
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&p.values); err != nil {
		var ute *json.UnmarshalTypeError
		if errors.As(err, &ute) && ute.Field != "" {
			return tenant.FieldErrors{"policy." + ute.Field: "must be " + jsonKind(ute.Type)}
		}
		return fmt.Errorf("policy: %w", err)
	}
	p.given = slices.Collect(maps.Keys(keys))
	return nil
}

// apply merges the patch into dst. Keys match fields as encoding/json
// matched them, regardless of case.
func (p *policyPatch) apply(dst *tenant.Policy) {
	if p == nil {
		return
	}
	from, to := reflect.ValueOf(p.values), reflect.ValueOf(dst).Elem()
	for i := range from.NumField() {
		name, _, _ := strings.Cut(from.Type().Field(i).Tag.Get("json"), ",")
		if slices.ContainsFunc(p.given, func(k string) bool { return strings.EqualFold(k, name) }) {
			to.Field(i).Set(from.Field(i))
		}
	}
}

// importList is a JSON array of strings that stops at admin.MaxImport
// entries: a 32 MiB body of one-character strings would otherwise become
// eight million of them (~400 MB of heap) before any limit was checked.
type importList []string

func (l *importList) UnmarshalJSON(raw []byte) error {
	dec := json.NewDecoder(bytes.NewReader(raw))
	tok, err := dec.Token()
	if err != nil {
		return err
	}
	if tok == nil {
		*l = nil
		return nil
	}
	if tok != json.Delim('[') {
		return tenant.FieldErrors{"recipients": "must be an array of strings"}
	}
	out := importList{}
	for dec.More() {
		if len(out) == admin.MaxImport {
			return tenant.FieldErrors{"recipients": fmt.Sprintf("at most %d per request", admin.MaxImport)}
		}
		var s string
		if err := dec.Decode(&s); err != nil {
			return tenant.FieldErrors{fmt.Sprintf("recipients[%d]", len(out)): "must be a string"}
		}
		out = append(out, s)
	}
	*l = out
	return nil
}

type recipientBody struct {
	Local string `json:"local"`
}

type importBody struct {
	Recipients importList `json:"recipients"`
	// Replace makes the list exactly Recipients (an empty list accepts any
	// local part again).
	Replace bool `json:"replace"`
}

type importResult struct {
	Added int `json:"added"`
}

type tokenBody struct {
	Name       string  `json:"name"`
	ResellerID int64   `json:"reseller_id"`
	Expires    rfc3339 `json:"expires"`
}

func set[T any](dst *T, src *T) {
	if src != nil {
		*dst = *src
	}
}

func (b resellerBody) apply(r *tenant.Reseller) {
	set(&r.Name, b.Name)
	b.Policy.apply(&r.Policy)
	if b.Quota != nil {
		set(&r.Quota.Domains, b.Quota.Domains)
		set(&r.Quota.Recipients, b.Quota.Recipients)
	}
}

// resellerView is a reseller as GET /resellers/{id} answers it: with what
// it holds against its quota, which a list does not count.
type resellerView struct {
	tenant.Reseller
	Usage admin.Usage `json:"usage"`
}

func (a *AdminAPI) getReseller(ctx context.Context, p admin.Principal, id int64) (resellerView, error) {
	r, err := a.svc.GetReseller(ctx, p, id)
	if err != nil {
		return resellerView{}, err
	}
	u, err := a.svc.ResellerUsage(ctx, p, id)
	return resellerView{r, u}, err
}

func (b customerBody) apply(c *tenant.Customer) {
	set(&c.Name, b.Name)
	set(&c.ResellerID, b.ResellerID)
	b.Policy.apply(&c.Policy)
}

func (b tokenBody) apply(t *admin.Token) {
	t.Name, t.ResellerID, t.Expires = b.Name, b.ResellerID, b.Expires.Time
}

func (b domainBody) apply(d *tenant.DomainRecord) {
	set(&d.Name, b.Name)
	set(&d.CustomerID, b.CustomerID)
	set(&d.Route, b.Route)
	set(&d.TLS, b.TLS)
	set(&d.Routes, b.Routes)
	b.Policy.apply(&d.Policy)
}

// apiHandler is an authenticated handler; authed maps its error.
type apiHandler func(w http.ResponseWriter, r *http.Request, p admin.Principal) error

// applier is a request body that patches a T: the create and update
// bodies above.
type applier[T any] interface{ apply(*T) }

// byID answers 200 with what fn returns for the path's {id}: a GET of one
// object, or a POST acting on one (verify, approve).
func byID[T any](fn func(context.Context, admin.Principal, int64) (T, error)) apiHandler {
	return func(w http.ResponseWriter, r *http.Request, p admin.Principal) error {
		id, err := pathID(r)
		if err != nil {
			return err
		}
		v, err := fn(r.Context(), p, id)
		if err != nil {
			return err
		}
		writeJSON(w, http.StatusOK, v)
		return nil
	}
}

// create decodes a B, applies it to a zero T, and answers 201 with what fn
// made of it.
func create[B applier[T], T any](fn func(context.Context, admin.Principal, T) (T, error)) apiHandler {
	return func(w http.ResponseWriter, r *http.Request, p admin.Principal) error {
		var b B
		if err := decode(w, r, maxBody, &b); err != nil {
			return err
		}
		var v T
		b.apply(&v)
		v, err := fn(r.Context(), p, v)
		if err != nil {
			return err
		}
		writeJSON(w, http.StatusCreated, v)
		return nil
	}
}

// update decodes a B and has fn apply it to the object of the path's
// {id}; it answers 200 with the result.
func update[B applier[T], T any](fn func(context.Context, admin.Principal, int64, func(*T)) (T, error)) apiHandler {
	return func(w http.ResponseWriter, r *http.Request, p admin.Principal) error {
		id, err := pathID(r)
		if err != nil {
			return err
		}
		var b B
		if err := decode(w, r, maxBody, &b); err != nil {
			return err
		}
		v, err := fn(r.Context(), p, id, b.apply)
		if err != nil {
			return err
		}
		writeJSON(w, http.StatusOK, v)
		return nil
	}
}

// remove deletes the object of the path's {id}: 204.
func remove(fn func(context.Context, admin.Principal, int64) error) apiHandler {
	return func(w http.ResponseWriter, r *http.Request, p admin.Principal) error {
		id, err := pathID(r)
		if err != nil {
			return err
		}
		if err := fn(r.Context(), p, id); err != nil {
			return err
		}
		w.WriteHeader(http.StatusNoContent)
		return nil
	}
}

// domainActivity is the domain's counts and recent refusals: the domain's
// own (keyed by its id), never an earlier holder's of its name.
func (a *AdminAPI) domainActivity(ctx context.Context, p admin.Principal, id int64) (admin.Activity, error) {
	return a.svc.DomainActivity(ctx, p, id, time.Now())
}

// --- recipients

func (a *AdminAPI) listRecipients(w http.ResponseWriter, r *http.Request, p admin.Principal) error {
	id, err := pathID(r)
	if err != nil {
		return err
	}
	return list(func(ctx context.Context, p admin.Principal, f admin.Filter) ([]admin.Recipient, error) {
		return a.svc.ListRecipients(ctx, p, id, f)
	}, func(x admin.Recipient) int64 { return x.ID })(w, r, p)
}

// getRecipient answers the path's {local} recipient of domain {id}.
func (a *AdminAPI) getRecipient(w http.ResponseWriter, r *http.Request, p admin.Principal) error {
	id, err := pathID(r)
	if err != nil {
		return err
	}
	rc, err := a.svc.GetRecipient(r.Context(), p, id, r.PathValue("local"))
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, rc)
	return nil
}

func (a *AdminAPI) createRecipient(w http.ResponseWriter, r *http.Request, p admin.Principal) error {
	id, err := pathID(r)
	if err != nil {
		return err
	}
	var b recipientBody
	if err := decode(w, r, maxBody, &b); err != nil {
		return err
	}
	if b.Local == "" {
		return tenant.FieldErrors{"local": "required"}
	}
	added, err := a.svc.AddRecipients(r.Context(), p, id, []string{b.Local}, false)
	if err != nil {
		return fieldRename(err, "recipients[0]", "local")
	}
	if added == 0 {
		return conflict("recipient already exists")
	}
	rc, err := a.svc.GetRecipient(r.Context(), p, id, b.Local)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusCreated, rc)
	return nil
}

func (a *AdminAPI) importRecipients(w http.ResponseWriter, r *http.Request, p admin.Principal) error {
	id, err := pathID(r)
	if err != nil {
		return err
	}
	// The owner is checked before the body is read: a domain of another
	// tenant costs a lookup, not a 32 MiB decode.
	if _, err := a.svc.GetDomain(r.Context(), p, id); err != nil {
		return err
	}
	// The node's import places are shared with the panel's CSV imports.
	done, err := a.svc.BeginImport(p)
	if err != nil {
		return err
	}
	defer done()
	var b importBody
	if err := decode(w, r, maxImportBody, &b); err != nil {
		return err
	}
	added, err := a.svc.AddRecipients(r.Context(), p, id, b.Recipients, b.Replace)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, importResult{Added: added})
	return nil
}

func (a *AdminAPI) deleteRecipient(w http.ResponseWriter, r *http.Request, p admin.Principal) error {
	id, err := pathID(r)
	if err != nil {
		return err
	}
	if err := a.svc.DeleteRecipient(r.Context(), p, id, r.PathValue("local")); err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

type conflictError string

func (e conflictError) Error() string { return string(e) }
func (e conflictError) Unwrap() error { return tenant.ErrConflict }

func conflict(msg string) error { return conflictError(msg) }

// fieldRename reports a bulk-call field error under the single-call name.
func fieldRename(err error, from, to string) error {
	fe, ok := err.(tenant.FieldErrors)
	if !ok {
		return err
	}
	if msg, ok := fe[from]; ok {
		delete(fe, from)
		fe[to] = msg
	}
	return fe
}
