package store

import (
	"bytes"
	"context"
	"testing"
	"time"
)

// TestMapStore runs the maps contract on both dialects: what nodes rely on
// to serve the same bytes must hold on either.
func TestMapStore(t *testing.T) {
	for _, tc := range dialects {
		t.Run(tc.name, func(t *testing.T) {
			s := tc.open(t)
			if err := s.MigrateMaps(context.Background()); err != nil {
				t.Fatal(err)
			}
			testMapContract(t, s)
		})
	}
}

func testMapContract(t *testing.T, s *Store) {
	ctx := context.Background()
	if _, _, ok, err := s.MapVersion(ctx, "global"); err != nil || ok {
		t.Fatalf("MapVersion on empty table = ok %v, %v; want not found", ok, err)
	}
	if _, ok, err := s.GetMap(ctx, "global"); err != nil || ok {
		t.Fatalf("GetMap on empty table = ok %v, %v; want not found", ok, err)
	}

	t0 := time.Date(2026, 3, 13, 10, 0, 0, 123456000, time.UTC)
	// Bytes that are not valid UTF-8 and hold a NUL must survive (BYTEA, BLOB).
	first := MapRecord{Scope: "global", GeneratedAt: t0, ETag: "aaa", Events: 250000,
		JSON: []byte(`{"events":250000}`), Drawing: []byte("<path d=\"M1 2\"/>\x00\xff"), Body: []byte("<main>é</main>")}
	older := MapRecord{Scope: "global", GeneratedAt: t0.Add(-time.Hour), ETag: "old", Events: 1,
		JSON: []byte(`{}`), Drawing: []byte("x"), Body: []byte("y")}
	newer := MapRecord{Scope: "global", GeneratedAt: t0.Add(time.Hour), ETag: "bbb", Events: 7,
		JSON: []byte(`{"events":7}`), Drawing: []byte("d"), Body: []byte("b")}
	other := MapRecord{Scope: "reseller-1", GeneratedAt: t0, ETag: "ccc", Events: 3,
		JSON: []byte(`[]`), Drawing: []byte("e"), Body: []byte("f")}

	steps := []struct {
		name    string
		put     MapRecord
		written bool
		want    MapRecord
	}{
		{"first generation", first, true, first},
		{"same generation again is idempotent", first, true, first},
		{"older generation never replaces a newer one", older, false, first},
		{"newer generation replaces", newer, true, newer},
	}
	for _, st := range steps {
		written, err := s.PutMap(ctx, st.put)
		if err != nil {
			t.Fatalf("%s: PutMap: %v", st.name, err)
		}
		if written != st.written {
			t.Errorf("%s: written = %v, want %v", st.name, written, st.written)
		}
		got, ok, err := s.GetMap(ctx, "global")
		if err != nil || !ok {
			t.Fatalf("%s: GetMap = ok %v, %v", st.name, ok, err)
		}
		assertMap(t, st.name, got, st.want)
		at, etag, ok, err := s.MapVersion(ctx, "global")
		if err != nil || !ok || etag != st.want.ETag || !at.Equal(st.want.GeneratedAt) {
			t.Errorf("%s: MapVersion = %v %q %v %v; want %v %q", st.name, at, etag, ok, err, st.want.GeneratedAt, st.want.ETag)
		}
	}

	// Scopes are independent rows.
	if _, err := s.PutMap(ctx, other); err != nil {
		t.Fatal(err)
	}
	got, _, _ := s.GetMap(ctx, "reseller-1")
	assertMap(t, "other scope", got, other)
	got, _, _ = s.GetMap(ctx, "global")
	assertMap(t, "global after other scope", got, newer)
}

func assertMap(t *testing.T, step string, got, want MapRecord) {
	t.Helper()
	if got.Scope != want.Scope || !got.GeneratedAt.Equal(want.GeneratedAt) || got.ETag != want.ETag || got.Events != want.Events ||
		!bytes.Equal(got.JSON, want.JSON) || !bytes.Equal(got.Drawing, want.Drawing) || !bytes.Equal(got.Body, want.Body) {
		t.Errorf("%s: got %+v\nwant %+v", step, got, want)
	}
}
