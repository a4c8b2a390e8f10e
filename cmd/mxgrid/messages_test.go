package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/mxgrid/mxgrid/internal/apiclient"
	"github.com/mxgrid/mxgrid/internal/democorpus"
	"github.com/mxgrid/mxgrid/internal/nodetest"
	"github.com/mxgrid/mxgrid/internal/smtptest"
	"github.com/mxgrid/mxgrid/internal/testenv"
)

// sendOne sends data from alice@sender.example to rcpt and returns the
// final reply code.
func sendOne(t *testing.T, addr, rcpt string, data []byte) int {
	code, _ := smtptest.Send(t, addr, "alice@sender.example", rcpt, data)
	return code
}

// TestMessageTrackingEndToEnd: ham, spam, a virus and mail for a domain
// whose server is down are sent over SMTP to a node with its default
// pipeline; each is found by recipient through the API and the CLI, the
// delivered one with the customer server's reply, the deferred one with
// its reason. Reseller B finds none of them, whatever filter or id it
// tries.
func TestMessageTrackingEndToEnd(t *testing.T) {
	ctx := context.Background()
	tokFile := operatorTokenFile(t)
	sink := smtptest.StartSink(t)
	down := testenv.RefusingAddr(t)
	cfg := nodetest.Config(t)
	cfg.Admin.OperatorTokenFile = tokFile
	cfg.Tracking.FlushInterval = 20 * time.Millisecond
	cfg.HTTP.PublicURL = "https://filter.example"
	n := nodetest.Start(t, cfg, nil)
	api := "http://" + n.HTTPAddr()

	op, err := apiclient.New(api, adminCLIToken, 10*time.Second, "test")
	if err != nil {
		t.Fatal(err)
	}
	post := func(c *apiclient.Client, path string, body any) int64 { return postID(t, c, path, body) }
	token := func(reseller int64) string {
		data, err := op.Do(ctx, "POST", "/api/v1/tokens", nil, map[string]any{"name": "t", "reseller_id": reseller})
		if err != nil {
			t.Fatal(err)
		}
		var tk struct {
			Secret string `json:"token"`
		}
		if err := json.Unmarshal(data, &tk); err != nil || tk.Secret == "" {
			t.Fatalf("token: %s %v", data, err)
		}
		return tk.Secret
	}
	resA := post(op, "/api/v1/resellers", map[string]any{"name": "A"})
	resB := post(op, "/api/v1/resellers", map[string]any{"name": "B"})
	custA := post(op, "/api/v1/customers", map[string]any{"name": "a", "reseller_id": resA})
	custB := post(op, "/api/v1/customers", map[string]any{"name": "b", "reseller_id": resB})
	domA := post(op, "/api/v1/domains", map[string]any{"name": "a.example", "customer_id": custA, "route": sink.Addr, "tls": "none"})
	post(op, "/api/v1/domains", map[string]any{"name": "down.example", "customer_id": custA, "route": down, "tls": "none"})
	domB := post(op, "/api/v1/domains", map[string]any{"name": "b.example", "customer_id": custB, "route": sink.Addr, "tls": "none"})
	tokA, tokB := token(resA), token(resB)

	// The node applies the change within its sync; wait until it accepts.
	deadline := time.Now().Add(10 * time.Second)
	for sendOne(t, n.SMTPAddr(), "probe@b.example", []byte("Subject: probe\r\n\r\nprobe\r\n")) != 250 {
		if time.Now().After(deadline) {
			t.Fatal("provisioned domains never accepted mail")
		}
		time.Sleep(50 * time.Millisecond)
	}

	corpus, err := democorpus.Messages()
	if err != nil {
		t.Fatal(err)
	}
	var ham []byte
	for _, m := range corpus {
		if !m.Spam {
			ham = m.Data
			break
		}
	}
	if code := sendOne(t, n.SMTPAddr(), "ham@a.example", ham); code != 250 {
		t.Fatalf("ham: %d", code)
	}
	// Spam: the sample's first message the default pipeline refuses.
	var spamReply string
	for _, m := range corpus {
		if !m.Spam {
			continue
		}
		if code, reply := smtptest.Send(t, n.SMTPAddr(), "alice@sender.example", "spam@a.example", m.Data); code >= 500 {
			spamReply = reply
			break
		}
	}
	if spamReply == "" {
		t.Fatal("the default pipeline refused none of the sample's spam")
	}
	virus := "From: x@sender.example\r\nSubject: invoice\r\nMIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=b\r\n\r\n--b\r\nContent-Type: text/plain\r\n\r\nsee attached\r\n--b\r\nContent-Type: application/octet-stream; name=inv.com\r\nContent-Transfer-Encoding: 7bit\r\n\r\n" +
		string(testenv.EICAR()) + "\r\n--b--\r\n"
	if code := sendOne(t, n.SMTPAddr(), "virus@a.example", []byte(virus)); code != 554 {
		t.Fatalf("virus: %d, want 554", code)
	}
	if code := sendOne(t, n.SMTPAddr(), "bob@down.example", ham); code != 451 {
		t.Fatalf("domain whose server is down: %d, want 451", code)
	}

	a, err := apiclient.New(api, tokA, 10*time.Second, "test")
	if err != nil {
		t.Fatal(err)
	}
	b, err := apiclient.New(api, tokB, 10*time.Second, "test")
	if err != nil {
		t.Fatal(err)
	}
	type rec struct {
		ID          int64  `json:"id"`
		Status      string `json:"status"`
		ReplyCode   int    `json:"reply_code"`
		Reply       string `json:"reply"`
		Downstream  string `json:"downstream_reply"`
		Reference   string `json:"reference"`
		DeferReason string `json:"defer_reason"`
		Action      string `json:"action"`
		Recipient   string `json:"recipient"`
		QueueID     string `json:"queue_id"`
		MessageID   string `json:"message_id"`
	}
	search := func(c *apiclient.Client, q url.Values) []rec {
		t.Helper()
		var pg struct{ Items []rec }
		if err := c.Get(ctx, "/api/v1/messages", q, &pg); err != nil {
			t.Fatal(err)
		}
		return pg.Items
	}
	// Records are written asynchronously: wait for all four.
	var found map[string]rec
	for deadline := time.Now().Add(10 * time.Second); ; {
		found = map[string]rec{}
		for _, r := range search(a, url.Values{"customer_id": {fmt.Sprint(custA)}}) {
			found[r.Recipient] = r
		}
		if len(found) == 4 || time.Now().After(deadline) {
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	if h := found["ham@a.example"]; h.Status != "delivered" || h.ReplyCode != 250 || !strings.Contains(h.Downstream, "2.0.0") {
		t.Errorf("ham: %+v", h)
	}
	s := found["spam@a.example"]
	if s.Status != "refused" || s.Reference == "" || s.Action != "reject" {
		t.Errorf("spam: %+v", s)
	}
	// The refusal points at the page that explains it.
	link := "https://filter.example/why/" + s.Reference
	if !strings.Contains(spamReply, link) {
		t.Errorf("spam reply %q lacks %s", spamReply, link)
	}
	resp, err := http.Get("http://" + n.HTTPAddr() + "/why/" + s.Reference)
	if err != nil {
		t.Fatal(err)
	}
	page, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || !strings.Contains(string(page), "a.example") || strings.Contains(string(page), "spam@") {
		t.Errorf("why page: %d\n%s", resp.StatusCode, page)
	}
	if v := found["virus@a.example"]; v.Status != "refused" || v.ReplyCode != 554 || !strings.Contains(v.Reply, "virus") {
		t.Errorf("virus: %+v", v)
	}
	if d := found["bob@down.example"]; d.Status != "deferred" || d.DeferReason != "customer_unreachable" || d.ReplyCode != 451 {
		t.Errorf("deferred: %+v", d)
	}
	for _, r := range []string{"ham@a.example", "spam@a.example", "virus@a.example", "bob@down.example"} {
		if got := search(a, url.Values{"recipient": {strings.ToUpper(r)}}); len(got) != 1 || got[0].Recipient != r {
			t.Errorf("by recipient %s: %+v", r, got)
		}
	}

	// Reseller B: nothing of A's by any filter, nor by id.
	ham1 := found["ham@a.example"]
	for _, q := range []url.Values{
		{}, {"recipient": {"ham@a.example"}}, {"customer_id": {fmt.Sprint(custA)}}, {"domain_id": {fmt.Sprint(domA)}},
		{"queue_id": {ham1.QueueID}}, {"message_id": {ham1.MessageID}}, {"ref": {found["spam@a.example"].Reference}},
		{"status": {"deferred"}}, {"sender": {"alice@sender.example"}},
	} {
		for _, r := range search(b, q) {
			if r.Recipient != "probe@b.example" {
				t.Errorf("reseller B's search %v finds %+v", q, r)
			}
		}
	}
	if _, err := b.Do(ctx, "GET", fmt.Sprintf("/api/v1/messages/%d", ham1.ID), nil, nil); err == nil || !strings.Contains(err.Error(), "404") {
		t.Errorf("reseller B reading A's record by id: %v, want 404", err)
	}
	if got := search(b, url.Values{"domain_id": {fmt.Sprint(domB)}}); len(got) != 1 {
		t.Errorf("reseller B's own record: %+v", got)
	}

	// The CLI, with reseller A's token: the table by recipient, and show.
	mx := func(args ...string) string {
		t.Helper()
		cmd := exec.Command(binary, args...)
		cmd.Env = append(os.Environ(), "MXGRID_API="+api, "MXGRID_TOKEN="+tokA)
		var o, e bytes.Buffer
		cmd.Stdout, cmd.Stderr = &o, &e
		if err := cmd.Run(); err != nil {
			t.Fatalf("mxgrid %v: %v\n%s", args, err, e.String())
		}
		return o.String()
	}
	out := mx("messages", "search", "-recipient", "bob@down.example")
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if len(lines) != 2 || !strings.HasPrefix(lines[0], "ID") {
		t.Fatalf("messages search printed %q", out)
	}
	if f := strings.Fields(lines[1]); len(f) < 7 || f[2] != "deferred" || f[3] != "451" || f[4] != "customer_unreachable" || f[6] != "bob@down.example" {
		t.Fatalf("messages search row %q", lines[1])
	}
	out = mx("messages", "show", fmt.Sprint(ham1.ID), "-json")
	var shown rec
	if err := json.Unmarshal([]byte(out), &shown); err != nil || shown.ID != ham1.ID || !strings.Contains(shown.Downstream, "2.0.0") {
		t.Fatalf("messages show: %q %v", out, err)
	}
	if out := mx("messages", "search", "-status", "refused", "-json"); strings.Count(out, `"status":"refused"`) != 2 {
		t.Fatalf("refused by status: %s", out)
	}
}
