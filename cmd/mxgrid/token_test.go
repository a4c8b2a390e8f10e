package main

import (
	"bytes"
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/mxgrid/mxgrid/admin"
	"github.com/mxgrid/mxgrid/store"
)

func TestTokenCreateExpiresIn(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	cfg := writeConfig(t, "data_dir: "+dir+"\n")
	created := func(args ...string) admin.Token {
		t.Helper()
		var out bytes.Buffer
		if err := runToken(ctx, append([]string{"create", "-config", cfg, "-operator"}, args...), &out); err != nil {
			t.Fatalf("token create %v: %v", args, err)
		}
		st, err := openStore(cfg)
		if err != nil {
			t.Fatal(err)
		}
		defer st.Close()
		tk, err := store.NewTenants(st).TokenByHash(ctx, admin.HashToken(strings.TrimSpace(out.String())))
		if err != nil {
			t.Fatalf("the printed token is not stored: %v", err)
		}
		return tk
	}

	before := time.Now()
	tk := created("-expires-in", "720h")
	if lo, hi := before.Add(720*time.Hour), time.Now().Add(720*time.Hour); tk.Expires.Before(lo.Truncate(time.Microsecond)) || tk.Expires.After(hi) {
		t.Errorf("-expires-in 720h: expires %v, want between %v and %v", tk.Expires, lo, hi)
	}
	if tk := created(); !tk.Expires.IsZero() {
		t.Errorf("without -expires-in: expires %v, want never", tk.Expires)
	}
	var out bytes.Buffer
	if err := runToken(ctx, []string{"create", "-config", cfg, "-operator", "-expires-in", "-1h"}, &out); !errors.Is(err, errUsage) {
		t.Errorf("-expires-in -1h: %v, want a usage error", err)
	}
}
