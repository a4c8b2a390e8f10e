package web

import (
	"context"
	"net/http"
	"time"

	"github.com/mxgrid/mxgrid/admin"
	"github.com/mxgrid/mxgrid/tenant"
)

// Request bodies. Create requests use the same types as updates: on PATCH
// an absent field keeps its value, a present policy replaces the whole
// policy object (set a field to null there to inherit it again).

type resellerBody struct {
	Name   *string        `json:"name"`
	Policy *tenant.Policy `json:"policy"`
}

type customerBody struct {
	Name       *string        `json:"name"`
	ResellerID *int64         `json:"reseller_id"`
	Policy     *tenant.Policy `json:"policy"`
}

type domainBody struct {
	Name       *string `json:"name"`
	CustomerID *int64  `json:"customer_id"`
	Route      *string `json:"route"`
	TLS        *string `json:"tls"`
	// Routes, when present, replace the whole list ([] removes every rule).
	Routes *[]tenant.RouteRule `json:"routes"`
	Policy *tenant.Policy      `json:"policy"`
}

type recipientBody struct {
	Local string `json:"local"`
}

type importBody struct {
	Recipients []string `json:"recipients"`
	// Replace makes the list exactly Recipients (an empty list accepts any
	// local part again).
	Replace bool `json:"replace"`
}

type importResult struct {
	Added int `json:"added"`
}

type tokenBody struct {
	Name       string `json:"name"`
	ResellerID int64  `json:"reseller_id"`
}

func set[T any](dst *T, src *T) {
	if src != nil {
		*dst = *src
	}
}

func (b resellerBody) apply(r *tenant.Reseller) {
	set(&r.Name, b.Name)
	set(&r.Policy, b.Policy)
}

func (b customerBody) apply(c *tenant.Customer) {
	set(&c.Name, b.Name)
	set(&c.ResellerID, b.ResellerID)
	set(&c.Policy, b.Policy)
}

func (b domainBody) apply(d *tenant.DomainRecord) {
	set(&d.Name, b.Name)
	set(&d.CustomerID, b.CustomerID)
	set(&d.Route, b.Route)
	set(&d.TLS, b.TLS)
	set(&d.Routes, b.Routes)
	set(&d.Policy, b.Policy)
}

// --- resellers

func (a *AdminAPI) listResellers(w http.ResponseWriter, r *http.Request, p admin.Principal) error {
	return list(w, r, func(ctx context.Context, f admin.Filter) ([]tenant.Reseller, error) {
		return a.svc.ListResellers(ctx, p, f)
	}, func(x tenant.Reseller) int64 { return x.ID })
}

func (a *AdminAPI) getReseller(w http.ResponseWriter, r *http.Request, p admin.Principal) error {
	id, err := pathID(r)
	if err != nil {
		return err
	}
	res, err := a.svc.GetReseller(r.Context(), p, id)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, res)
	return nil
}

func (a *AdminAPI) createReseller(w http.ResponseWriter, r *http.Request, p admin.Principal) error {
	var b resellerBody
	if err := decode(w, r, maxBody, &b); err != nil {
		return err
	}
	var res tenant.Reseller
	b.apply(&res)
	res, err := a.svc.CreateReseller(r.Context(), p, res)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusCreated, res)
	return nil
}

func (a *AdminAPI) updateReseller(w http.ResponseWriter, r *http.Request, p admin.Principal) error {
	id, err := pathID(r)
	if err != nil {
		return err
	}
	var b resellerBody
	if err := decode(w, r, maxBody, &b); err != nil {
		return err
	}
	res, err := a.svc.UpdateReseller(r.Context(), p, id, b.apply)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, res)
	return nil
}

func (a *AdminAPI) deleteReseller(w http.ResponseWriter, r *http.Request, p admin.Principal) error {
	id, err := pathID(r)
	if err != nil {
		return err
	}
	if err := a.svc.DeleteReseller(r.Context(), p, id); err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

// --- customers

func (a *AdminAPI) listCustomers(w http.ResponseWriter, r *http.Request, p admin.Principal) error {
	return list(w, r, func(ctx context.Context, f admin.Filter) ([]tenant.Customer, error) {
		return a.svc.ListCustomers(ctx, p, f)
	}, func(x tenant.Customer) int64 { return x.ID })
}

func (a *AdminAPI) getCustomer(w http.ResponseWriter, r *http.Request, p admin.Principal) error {
	id, err := pathID(r)
	if err != nil {
		return err
	}
	c, err := a.svc.GetCustomer(r.Context(), p, id)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, c)
	return nil
}

func (a *AdminAPI) createCustomer(w http.ResponseWriter, r *http.Request, p admin.Principal) error {
	var b customerBody
	if err := decode(w, r, maxBody, &b); err != nil {
		return err
	}
	var c tenant.Customer
	b.apply(&c)
	c, err := a.svc.CreateCustomer(r.Context(), p, c)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusCreated, c)
	return nil
}

func (a *AdminAPI) updateCustomer(w http.ResponseWriter, r *http.Request, p admin.Principal) error {
	id, err := pathID(r)
	if err != nil {
		return err
	}
	var b customerBody
	if err := decode(w, r, maxBody, &b); err != nil {
		return err
	}
	c, err := a.svc.UpdateCustomer(r.Context(), p, id, b.apply)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, c)
	return nil
}

func (a *AdminAPI) deleteCustomer(w http.ResponseWriter, r *http.Request, p admin.Principal) error {
	id, err := pathID(r)
	if err != nil {
		return err
	}
	if err := a.svc.DeleteCustomer(r.Context(), p, id); err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

// --- domains

func (a *AdminAPI) listDomains(w http.ResponseWriter, r *http.Request, p admin.Principal) error {
	return list(w, r, func(ctx context.Context, f admin.Filter) ([]tenant.DomainRecord, error) {
		return a.svc.ListDomains(ctx, p, f)
	}, func(x tenant.DomainRecord) int64 { return x.ID })
}

func (a *AdminAPI) getDomain(w http.ResponseWriter, r *http.Request, p admin.Principal) error {
	id, err := pathID(r)
	if err != nil {
		return err
	}
	d, err := a.svc.GetDomain(r.Context(), p, id)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, d)
	return nil
}

func (a *AdminAPI) createDomain(w http.ResponseWriter, r *http.Request, p admin.Principal) error {
	var b domainBody
	if err := decode(w, r, maxBody, &b); err != nil {
		return err
	}
	var d tenant.DomainRecord
	b.apply(&d)
	d, err := a.svc.CreateDomain(r.Context(), p, d)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusCreated, d)
	return nil
}

// domainActivity answers the domain's counts and recent refusals: the
// domain's own (keyed by its id), never an earlier holder's of its name.
func (a *AdminAPI) domainActivity(w http.ResponseWriter, r *http.Request, p admin.Principal) error {
	id, err := pathID(r)
	if err != nil {
		return err
	}
	act, err := a.svc.DomainActivity(r.Context(), p, id, time.Now())
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, act)
	return nil
}

// domainAction serves a POST that acts on one domain and answers with it
// (verify, approve): 200 with its status, pending or active.
func (a *AdminAPI) domainAction(act func(context.Context, admin.Principal, int64) (tenant.DomainRecord, error)) func(http.ResponseWriter, *http.Request, admin.Principal) error {
	return func(w http.ResponseWriter, r *http.Request, p admin.Principal) error {
		id, err := pathID(r)
		if err != nil {
			return err
		}
		d, err := act(r.Context(), p, id)
		if err != nil {
			return err
		}
		writeJSON(w, http.StatusOK, d)
		return nil
	}
}

func (a *AdminAPI) updateDomain(w http.ResponseWriter, r *http.Request, p admin.Principal) error {
	id, err := pathID(r)
	if err != nil {
		return err
	}
	var b domainBody
	if err := decode(w, r, maxBody, &b); err != nil {
		return err
	}
	d, err := a.svc.UpdateDomain(r.Context(), p, id, b.apply)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, d)
	return nil
}

func (a *AdminAPI) deleteDomain(w http.ResponseWriter, r *http.Request, p admin.Principal) error {
	id, err := pathID(r)
	if err != nil {
		return err
	}
	if err := a.svc.DeleteDomain(r.Context(), p, id); err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

// --- recipients

func (a *AdminAPI) listRecipients(w http.ResponseWriter, r *http.Request, p admin.Principal) error {
	id, err := pathID(r)
	if err != nil {
		return err
	}
	return list(w, r, func(ctx context.Context, f admin.Filter) ([]admin.Recipient, error) {
		return a.svc.ListRecipients(ctx, p, id, f)
	}, func(x admin.Recipient) int64 { return x.ID })
}

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

// --- tokens and audit

func (a *AdminAPI) listTokens(w http.ResponseWriter, r *http.Request, p admin.Principal) error {
	return list(w, r, func(ctx context.Context, f admin.Filter) ([]admin.Token, error) {
		return a.svc.ListTokens(ctx, p, f)
	}, func(x admin.Token) int64 { return x.ID })
}

func (a *AdminAPI) getToken(w http.ResponseWriter, r *http.Request, p admin.Principal) error {
	id, err := pathID(r)
	if err != nil {
		return err
	}
	t, err := a.svc.GetToken(r.Context(), p, id)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, t)
	return nil
}

func (a *AdminAPI) createToken(w http.ResponseWriter, r *http.Request, p admin.Principal) error {
	var b tokenBody
	if err := decode(w, r, maxBody, &b); err != nil {
		return err
	}
	t, err := a.svc.CreateToken(r.Context(), p, admin.Token{Name: b.Name, ResellerID: b.ResellerID})
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusCreated, t)
	return nil
}

func (a *AdminAPI) deleteToken(w http.ResponseWriter, r *http.Request, p admin.Principal) error {
	id, err := pathID(r)
	if err != nil {
		return err
	}
	if err := a.svc.DeleteToken(r.Context(), p, id); err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

func (a *AdminAPI) listAudit(w http.ResponseWriter, r *http.Request, p admin.Principal) error {
	return list(w, r, func(ctx context.Context, f admin.Filter) ([]admin.AuditEntry, error) {
		return a.svc.ListAudit(ctx, p, f)
	}, func(x admin.AuditEntry) int64 { return x.ID })
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
