package tenant

import (
	"errors"
	"strings"
	"testing"
)

func TestRouteFor(t *testing.T) {
	d, err := StaticDomain{Name: "split.example", Route: "default.test:25", TLS: "opportunistic", Routes: []RouteRule{
		{Recipients: []string{"alice", "Carol@Split.Example", "sales-*"}, Route: "suite.test:25", TLS: "required"},
		{Recipients: []string{"sales-eu-*", "sales-"}, Route: "onprem.test:2525"},
	}}.Build()
	if err != nil {
		t.Fatal(err)
	}
	suite := Route{Addr: "suite.test:25", TLS: TLSRequired}
	onprem := Route{Addr: "onprem.test:2525", TLS: TLSOpportunistic} // the domain's tls
	def := Route{Addr: "default.test:25", TLS: TLSOpportunistic}
	for _, tc := range []struct {
		local string
		want  Route
	}{
		{"alice", suite},
		{"ALICE", suite},       // local parts compare without case, as recipients do
		{"carol", suite},       // given as an address at the domain
		{"alice2", def},        // exact means exact
		{"sales-us", suite},    // prefix
		{"sales-eu-1", onprem}, // the longest prefix wins, whatever the rule order
		{"sales-", onprem},     // an exact entry beats every prefix
		{"sales", def},         // shorter than the prefix
		{"bob", def},
	} {
		tc.want.Trusted = true // a static domain's routes are the operator's
		if got := d.RouteFor(tc.local); got != tc.want {
			t.Errorf("RouteFor(%q) = %v, want %v", tc.local, got, tc.want)
		}
	}
	if got := (&Domain{Route: def, Source: "store"}).RouteFor("anyone"); got != def {
		t.Errorf("a tenant domain without rules routes to %v, want its route, untrusted", got)
	}
}

// TestRouteRuleErrors: each mistake is refused with the key that names it,
// as the config loader prefixes with domains[i].
func TestRouteRuleErrors(t *testing.T) {
	rule := func(route string, rcpts ...string) RouteRule { return RouteRule{Recipients: rcpts, Route: route} }
	for _, tc := range []struct {
		name  string
		rules []RouteRule
		want  string
	}{
		{"route not host:port", []RouteRule{rule("a.test:25", "a"), rule("mail.test", "b")}, "routes[1].route: "},
		{"bad tls", []RouteRule{{Recipients: []string{"a"}, Route: "a.test:25", TLS: "maybe"}}, "routes[0].tls: "},
		{"no recipients", []RouteRule{rule("a.test:25")}, "routes[0].recipients: required"},
		{"lone star", []RouteRule{rule("a.test:25", "a", "*")}, `routes[0].recipients[1]: "*" matches every recipient`},
		{"star inside", []RouteRule{rule("a.test:25", "a*b")}, "routes[0].recipients[0]: \"a*b\": '*' is only allowed at the end"},
		{"other domain", []RouteRule{rule("a.test:25", "a@elsewhere.test")}, "routes[0].recipients[0]: "},
		{"space", []RouteRule{rule("a.test:25", "a b")}, "routes[0].recipients[0]: "},
		{"claimed twice", []RouteRule{rule("a.test:25", "x-*"), rule("b.test:25", "y", "X-*")}, `routes[1].recipients[1]: "X-*" is already routed by routes[0]`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := StaticDomain{Name: "split.example", Route: "d.test:25", Routes: tc.rules}.Build()
			if err == nil || !strings.HasPrefix(err.Error(), tc.want) {
				t.Fatalf("err %v, want prefix %q", err, tc.want)
			}
		})
	}
	t.Run("too many rules", func(t *testing.T) {
		rules := make([]RouteRule, maxRouteRules+1)
		for i := range rules {
			rules[i] = rule("a.test:25", "a"+strings.Repeat("x", i))
		}
		if _, err := (StaticDomain{Name: "split.example", Route: "d.test:25", Routes: rules}).Build(); err == nil || !strings.HasPrefix(err.Error(), "routes: at most") {
			t.Fatalf("err %v", err)
		}
	})
}

// TestDomainRecordRoutes: the API's records are normalised (lower case,
// address form reduced to the local part, never a nil list) and keep a
// rule's empty tls, which then follows the domain's.
func TestDomainRecordRoutes(t *testing.T) {
	d := DomainRecord{Name: "Split.Example", CustomerID: 1, Route: "d.test:25",
		Routes: []RouteRule{{Recipients: []string{"Alice@split.example", "Sales-*"}, Route: "s.test:25"}}}
	if err := d.Normalize(); err != nil {
		t.Fatal(err)
	}
	if got := d.Routes[0].Recipients; strings.Join(got, ",") != "alice,sales-*" || d.Routes[0].TLS != "" {
		t.Fatalf("normalised rule %+v", d.Routes[0])
	}
	none := DomainRecord{Name: "none.example", CustomerID: 1, Route: "d.test:25"}
	if err := none.Normalize(); err != nil || none.Routes == nil {
		t.Fatalf("routes %v err %v, want an empty list", none.Routes, err)
	}
	bad := DomainRecord{Name: "bad.example", CustomerID: 1, Route: "d.test:25", Routes: []RouteRule{{Recipients: []string{"a"}, Route: "nope"}}}
	fe, ok := bad.Normalize().(FieldErrors)
	if !ok || fe["routes[0].route"] == "" {
		t.Fatalf("errors %v, want routes[0].route", fe)
	}

	doms := resolve(t, Data{Domains: []DomainRecord{{ID: 1, Name: "split.example", Route: "d.test:25", TLS: "none", Routes: d.Routes}}})
	if got, want := doms[0].RouteFor("sales-x"), (Route{Addr: "s.test:25", TLS: TLSNone}); got != want {
		t.Fatalf("resolved RouteFor = %v, want %v (the domain's tls)", got, want)
	}
}

// TestRoutesSurviveTheSnapshotFile: a node that starts while the store is
// down routes split recipients as it did before.
func TestRoutesSurviveTheSnapshotFile(t *testing.T) {
	dir := t.TempDir()
	data := storeData(7, "d.test:25")
	data.Domains[1].Routes = []RouteRule{{Recipients: []string{"bob"}, Route: "s.test:25", TLS: "required"}, {Recipients: []string{"x-*"}, Route: "x.test:25"}}
	newTestSyncer(t, dir, &fakeLoader{data: data}, nil)
	s, _ := newTestSyncer(t, dir, &fakeLoader{err: errors.New("down")}, nil)
	d, ok := s.Directory().Lookup("store.example")
	if !ok {
		t.Fatal("domain missing from the snapshot file")
	}
	for local, want := range map[string]Route{
		"bob":   {Addr: "s.test:25", TLS: TLSRequired},
		"x-1":   {Addr: "x.test:25", TLS: TLSNone},
		"alice": {Addr: "d.test:25", TLS: TLSNone},
	} {
		if got := d.RouteFor(local); got != want {
			t.Errorf("from the file, RouteFor(%q) = %v, want %v", local, got, want)
		}
	}
}
