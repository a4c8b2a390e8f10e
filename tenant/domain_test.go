package tenant

import (
	"io"
	"log/slog"
	"math"
	"net/netip"
	"reflect"
	"slices"
	"strings"
	"testing"
)

// fullPolicy sets every field of a Policy to a non-empty value, so a field
// added later without a line in Over fails TestPolicyOverEveryField.
func fullPolicy(t *testing.T) Policy {
	t.Helper()
	var p Policy
	v := reflect.ValueOf(&p).Elem()
	for i := range v.NumField() {
		f := v.Field(i)
		switch f.Kind() {
		case reflect.Pointer:
			f.Set(reflect.New(f.Type().Elem()))
		case reflect.Slice:
			f.Set(reflect.MakeSlice(f.Type(), 1, 1))
		default:
			t.Fatalf("Policy.%s is a %s: every field must be a pointer or a list, so nil can mean inherit", v.Type().Field(i).Name, f.Kind())
		}
	}
	return p
}

func TestPolicyOverEveryField(t *testing.T) {
	full := fullPolicy(t)
	if got := (Policy{}).Over(full); !reflect.DeepEqual(got, full) {
		t.Errorf("an empty policy over a full one = %+v, want every field inherited", got)
	}
	if got := full.Over(Policy{}); !reflect.DeepEqual(got, full) {
		t.Errorf("a full policy over an empty one = %+v, want every field kept", got)
	}
	// Field by field: the own value wins, and an empty list is a value.
	tag, other := 1.0, 2.0
	own := Policy{TagScore: &tag, IPAllow: []string{}}
	base := Policy{TagScore: &other, RejectScore: &other, IPAllow: []string{"192.0.2.1"}}
	got := own.Over(base)
	if got.TagScore != &tag || got.RejectScore != &other || got.IPAllow == nil || len(got.IPAllow) != 0 {
		t.Errorf("Over = %+v, want own tag score, inherited reject score, own empty ip_allow", got)
	}
}

// TestDomainSources: the config file, a stored row and the snapshot file
// build the same domain, lists parsed, through newDomain.
func TestDomainSources(t *testing.T) {
	tag := 4.0
	policy := Policy{IPBlock: []string{"192.0.2.0/24", "2001:db8::1", "::ffff:198.51.100.7"}, SenderAllow: []string{"Partner.Example", "Boss@A.Example"}}
	static, err := StaticDomain{Name: "Src.Example", Route: "mx.test:25", TLS: "none", Recipients: []string{"Bob", "carol@src.example"}, Policy: policy}.Build()
	if err != nil {
		t.Fatal(err)
	}
	stored := resolve(t, Data{
		Resellers:  []Reseller{{ID: 1, Policy: Policy{TagScore: &tag}}},
		Customers:  []Customer{{ID: 2, ResellerID: 1}},
		Domains:    []DomainRecord{{ID: 3, CustomerID: 2, Name: "src.example", Route: "mx.test:25", TLS: "none", Policy: policy}},
		Recipients: map[int64]Recipients{3: PackRecipients([]string{"bob", "carol"})},
	})
	if len(stored) != 1 {
		t.Fatalf("resolved %v", stored)
	}
	wantLists := Lists{
		IPBlock:     []netip.Prefix{netip.MustParsePrefix("192.0.2.0/24"), netip.MustParsePrefix("2001:db8::1/128"), netip.MustParsePrefix("198.51.100.7/32")},
		SenderAllow: []string{"partner.example", "boss@a.example"},
	}
	for _, d := range []*Domain{static, stored[0]} {
		if d.Name != "src.example" || d.Route != (Route{Addr: "mx.test:25", TLS: TLSNone}) || !d.AcceptsRecipient("BOB") || !d.AcceptsRecipient("carol") || d.AcceptsRecipient("dave") || !d.AcceptsRecipient("PostMaster") {
			t.Errorf("%s domain = %+v", d.Source, d)
		}
		if !reflect.DeepEqual(d.Lists, wantLists) {
			t.Errorf("%s domain lists = %+v, want %+v", d.Source, d.Lists, wantLists)
		}
	}
	if stored[0].Policy.TagScore == nil || *stored[0].Policy.TagScore != tag {
		t.Errorf("stored domain did not inherit its reseller's tag score: %+v", stored[0].Policy)
	}
}

// matchesEntry is how an IP list entry matched before lists were parsed
// once per snapshot: the reference FuzzParseIPs holds parseIPs to.
func matchesEntry(e string, ip netip.Addr) bool {
	if p, err := netip.ParsePrefix(e); err == nil {
		return p.Contains(ip)
	}
	a, err := netip.ParseAddr(e)
	return err == nil && a.Unmap() == ip
}

func FuzzParseIPs(f *testing.F) {
	for _, s := range [][2]string{
		{"192.0.2.0/24", "192.0.2.9"}, {"192.0.2.7", "192.0.2.7"}, {"::ffff:192.0.2.7", "192.0.2.7"},
		{"2001:db8::/32", "2001:db8::1"}, {"fe80::1%eth0", "fe80::1"}, {"10.0.0.0/33", "10.0.0.1"}, {"nonsense", "::1"},
	} {
		f.Add(s[0], s[1])
	}
	f.Fuzz(func(t *testing.T, entry, client string) {
		ip, err := netip.ParseAddr(client)
		if err != nil {
			return
		}
		ip = ip.WithZone("") // a client address from a socket has no zone
		got := false
		for _, p := range parseIPs([]string{entry}) {
			got = got || p.Contains(ip)
		}
		if want := matchesEntry(entry, ip); got != want {
			t.Errorf("entry %q, client %s: parsed list matches %v, the entry matched %v", entry, ip, got, want)
		}
	})
}

func TestNormalizeKeepsAPIErrors(t *testing.T) {
	d := DomainRecord{Name: "a..example", Route: "mx", TLS: "maybe", CustomerID: 0, Routes: []RouteRule{{Route: "x.test:25"}}}
	err := d.Normalize()
	fe, ok := err.(FieldErrors)
	if !ok {
		t.Fatalf("Normalize = %v, want FieldErrors", err)
	}
	for _, key := range []string{"name", "route", "tls", "customer_id", "routes[0].recipients"} {
		if _, ok := fe[key]; !ok {
			t.Errorf("no error for %s in %v", key, fe)
		}
	}
	ok2 := DomainRecord{Name: "Ok.Example", Route: "mx.test:25", CustomerID: 1}
	if err := ok2.Normalize(); err != nil || ok2.Name != "ok.example" || ok2.TLS != "opportunistic" || ok2.Routes == nil {
		t.Errorf("Normalize = %v, record %+v", err, ok2)
	}
	if !strings.Contains(fe.Error(), "invalid input: ") {
		t.Errorf("FieldErrors text %q", fe.Error())
	}
}

// resolve builds the stored domains data describes, by name.
func resolve(t *testing.T, data Data) []*Domain {
	t.Helper()
	served, _ := newHierarchy().apply(Delta{Data: data}, nil, slog.New(slog.NewTextHandler(io.Discard, nil)))
	out := slices.Collect(served.All())
	slices.SortFunc(out, func(a, b *Domain) int { return strings.Compare(a.Name, b.Name) })
	return out
}

// TestPolicyScores: a score the scanner would ignore is refused. The
// scanner tags and refuses only at scores above 0, so a tenant's
// tag_score of 0 (meant as "tag everything") or below silently tagged and
// quarantined nothing, and a reject_score of 0 refused nothing.
func TestPolicyScores(t *testing.T) {
	f := func(v float64) *float64 { return &v }
	for _, tt := range []struct {
		name         string
		tag, reject  *float64
		wantBadField string
	}{
		{"unset", nil, nil, ""},
		{"both positive", f(0.5), f(12), ""},
		{"tag zero", f(0), nil, "tag_score"},
		{"tag negative", f(-100), nil, "tag_score"},
		{"reject zero", nil, f(0), "reject_score"},
		{"reject negative", f(1), f(-1), "reject_score"},
		{"not finite", f(math.Inf(1)), nil, "tag_score"},
		{"huge", nil, f(2e6), "reject_score"},
		{"reject below tag", f(8), f(5), "reject_score"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			fe := Policy{TagScore: tt.tag, RejectScore: tt.reject}.Validate("")
			if tt.wantBadField == "" && len(fe) > 0 || tt.wantBadField != "" && fe[tt.wantBadField] == "" {
				t.Errorf("Validate = %v, want an error on %q only", fe, tt.wantBadField)
			}
		})
	}
}
