package panel_test

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/mxgrid/mxgrid/internal/apiclient"
	"github.com/mxgrid/mxgrid/internal/nodetest"
	"github.com/mxgrid/mxgrid/scanner"
)

// panelFixture is a node with an operator token, a browser on its panel,
// and the two resellers of createResellers, for tests that provision
// through the API and look through the panel.
type panelFixture struct {
	t         *testing.T
	node      *nodetest.Node
	base      string
	b         *browser
	op        *apiclient.Client
	resellers map[string]int64 // by slug
}

// startPanelFixture starts it; stages nil is the default pipeline.
func startPanelFixture(t *testing.T, stages []scanner.Stage) *panelFixture {
	t.Helper()
	cfg := nodetest.Config(t)
	opToken := "operator-" + strings.Repeat("f", 40)
	tokFile := filepath.Join(t.TempDir(), "op.token")
	if err := os.WriteFile(tokFile, []byte(opToken), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg.Admin.OperatorTokenFile = tokFile
	cfg.Tracking.FlushInterval = 20 * time.Millisecond
	n := nodetest.Start(t, cfg, stages)
	f := &panelFixture{t: t, node: n, base: "http://" + n.HTTPAddr(), resellers: map[string]int64{}}
	f.b = startBrowser(t, f.base)
	f.b.createResellers(opToken)
	var err error
	if f.op, err = apiclient.New(f.base, opToken, 10*time.Second, "test"); err != nil {
		t.Fatal(err)
	}
	var list struct {
		Items []struct {
			ID   int64
			Slug string
		}
	}
	if err := f.op.Get(context.Background(), "/api/v1/resellers", nil, &list); err != nil {
		t.Fatal(err)
	}
	for _, r := range list.Items {
		f.resellers[r.Slug] = r.ID
	}
	return f
}

// post creates an object as the operator and returns its id.
func (f *panelFixture) post(path string, body any) int64 {
	f.t.Helper()
	data, err := f.op.Do(context.Background(), "POST", path, nil, body)
	if err != nil {
		f.t.Fatalf("POST %s: %v", path, err)
	}
	var obj struct{ ID int64 }
	if err := json.Unmarshal(data, &obj); err != nil {
		f.t.Fatal(err)
	}
	return obj.ID
}

// acceptsMail waits until the node takes mail for rcpt (a new domain
// reaches the node's directory within its sync).
func (f *panelFixture) acceptsMail(rcpt string) {
	f.t.Helper()
	for deadline := time.Now().Add(10 * time.Second); send(f.t, f.node.SMTPAddr(), rcpt, "Subject: probe\r\n\r\nprobe\r\n") != 250; time.Sleep(50 * time.Millisecond) {
		if time.Now().After(deadline) {
			f.t.Fatalf("the node never accepted mail for %s", rcpt)
		}
	}
}
