package web

import (
	"encoding/json"
	"fmt"
	"net/http"
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/mxgrid/mxgrid/tenant"
)

// TestAPIPolicyPatchMerges: a policy in a PATCH is a JSON merge patch
// (RFC 7396) at every level: a field it names is set (null: inherited
// again), one it leaves out keeps its value. Replaced whole, a PATCH of a
// tag score dropped the domain's allow list and its quarantine.
func TestAPIPolicyPatchMerges(t *testing.T) {
	f := newAPIFixture(t)
	for _, level := range []struct{ who, path string }{
		{"operator", fmt.Sprintf("/api/v1/resellers/%d", f.resA.ID)},
		{"own", fmt.Sprintf("/api/v1/customers/%d", f.custA.ID)},
		{"own", fmt.Sprintf("/api/v1/domains/%d", f.domA.ID)},
	} {
		policy := func() map[string]any {
			t.Helper()
			code, out := f.do(level.who, "GET", level.path, nil)
			if code != http.StatusOK {
				t.Fatalf("GET %s: %d %s", level.path, code, out)
			}
			var obj struct {
				Policy map[string]any `json:"policy"`
			}
			if err := json.Unmarshal(out, &obj); err != nil {
				t.Fatal(err)
			}
			return obj.Policy
		}
		steps := []struct {
			patch string
			want  map[string]any
		}{
			{`{"policy":{"sender_allow":["partner.example"],"tag_action":"quarantine","tag_score":5}}`,
				map[string]any{"sender_allow": []any{"partner.example"}, "tag_action": "quarantine", "tag_score": 5.0}},
			{`{"policy":{"tag_score":4}}`,
				map[string]any{"sender_allow": []any{"partner.example"}, "tag_action": "quarantine", "tag_score": 4.0}},
			{`{"policy":{"TAG_SCORE":3.5,"reject_score":20}}`,
				map[string]any{"sender_allow": []any{"partner.example"}, "tag_action": "quarantine", "tag_score": 3.5, "reject_score": 20.0}},
			{`{"policy":{"sender_allow":null,"tag_action":null}}`,
				map[string]any{"tag_score": 3.5, "reject_score": 20.0}},
			{`{"policy":{}}`,
				map[string]any{"tag_score": 3.5, "reject_score": 20.0}},
		}
		for _, st := range steps {
			if code, out := f.do(level.who, "PATCH", level.path, st.patch); code != http.StatusOK {
				t.Fatalf("PATCH %s %s: %d %s", level.path, st.patch, code, out)
			}
			if got := policy(); !reflect.DeepEqual(got, st.want) {
				t.Errorf("%s after %s: policy %v, want %v", level.path, st.patch, got, st.want)
			}
		}
	}
	for _, tc := range []struct{ body, field string }{
		{`{"policy":{"tag_score":"high"}}`, "policy.tag_score"},
		{`{"policy":{"sender_block":"a@b.example"}}`, "policy.sender_block"},
		{`{"policy":{"no_such_setting":1}}`, ""},
		{`{"policy":["tag_score"]}`, ""},
	} {
		code, out := f.do("own", "PATCH", fmt.Sprintf("/api/v1/domains/%d", f.domA.ID), tc.body)
		if code != http.StatusBadRequest {
			t.Errorf("%s: %d %s, want 400", tc.body, code, out)
			continue
		}
		var e apiError
		if err := json.Unmarshal(out, &e); err != nil {
			t.Fatal(err)
		}
		if tc.field != "" && e.Fields[tc.field] == "" {
			t.Errorf("%s: fields %v lack %s", tc.body, e.Fields, tc.field)
		}
	}
}

// FuzzPolicyPatch: a policy object either is refused or, merged into a
// policy with every field set, sets exactly the fields it names (as the
// decoder matches keys, regardless of case) to what it gives them and
// leaves every other field as it was.
func FuzzPolicyPatch(f *testing.F) {
	for _, s := range []string{
		`{}`, `{"tag_score":4}`, `{"TAG_SCORE":null,"sender_allow":["a.example"]}`, `{"sender_bloc\u212A":[]}`,
		`{"ip_allow":["10.0.0.0/8"],"virus_action":"tag","dmarc_enforce":false,"max_message_size":1}`, `{"x":1}`, `[]`, `null`,
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, body string) {
		var p policyPatch
		if err := json.Unmarshal([]byte(body), &p); err != nil {
			return
		}
		base := fullPolicy()
		got := base
		p.apply(&got)
		gv, bv, pv := reflect.ValueOf(got), reflect.ValueOf(base), reflect.ValueOf(p.values)
		for i := range gv.NumField() {
			name, _, _ := strings.Cut(gv.Type().Field(i).Tag.Get("json"), ",")
			named := slices.ContainsFunc(p.given, func(k string) bool { return strings.EqualFold(k, name) })
			want := bv.Field(i)
			if named {
				want = pv.Field(i)
			}
			if !reflect.DeepEqual(gv.Field(i).Interface(), want.Interface()) {
				t.Fatalf("%s: field %s = %v, want %v (named: %v)", body, name, gv.Field(i).Interface(), want.Interface(), named)
			}
		}
	})
}

// fullPolicy has every field set, so that a field the merge clears or
// keeps shows.
func fullPolicy() tenant.Policy {
	f, s, b, n := 1.5, "x", true, int64(7)
	return tenant.Policy{TagScore: &f, RejectScore: &f, SubjectTag: &s, VirusAction: &s, TagAction: &s, DMARCEnforce: &b,
		MaxMessageSize: &n, SenderAllow: []string{"a"}, SenderBlock: []string{"b"}, IPAllow: []string{"c"}, IPBlock: []string{"d"}}
}
