package panel_test

import (
	"context"
	"fmt"
	"strings"
	"testing"

	"github.com/chromedp/chromedp"

	"github.com/mxgrid/mxgrid/internal/nodetest"
	"github.com/mxgrid/mxgrid/scanner"
)

// TestPanelQuarantineInChromium: Northwind's domain quarantines the tag
// band; its user finds the held messages, reads a text-only preview (the
// HTML part is not rendered, its image not loaded), releases one,
// releases another and allows its sender, deletes a third. Contoso sees
// none of them, in the list or by URL.
func TestPanelQuarantineInChromium(t *testing.T) {
	ctx := context.Background()
	sink := nodetest.StartSink(t)
	f := startPanelFixture(t, []scanner.Stage{{Check: nodetest.TagBand{}, OnError: scanner.OnErrorAccept}})
	n, base, b, op := f.node, f.base, f.b, f.op
	cust := f.post("/api/v1/customers", map[string]any{"name": "Acme", "reseller_id": f.resellers["northwind"]})
	dom := f.post("/api/v1/domains", map[string]any{"name": "acme.example", "customer_id": cust, "route": sink.Addr, "tls": "none",
		"policy": map[string]any{"tag_action": "quarantine"}})
	f.acceptsMail("probe@acme.example") // not tag band: delivered
	before := len(sink.Messages())
	msg := func(i int) string {
		return fmt.Sprintf("From: Billing <billing%d@vendor.example>\r\nSubject: Invoice %d TAGME\r\nMIME-Version: 1.0\r\n"+
			"Content-Type: multipart/alternative; boundary=b\r\n\r\n--b\r\nContent-Type: text/plain\r\n\r\nInvoice %d is attached, please pay.\r\n"+
			"--b\r\nContent-Type: text/html\r\n\r\n<p><b>Invoice %d</b> is attached</p><img src=\"http://tracker.example/pixel.gif\">\r\n--b--\r\n", i, i, i, i)
	}
	for i := 1; i <= 3; i++ {
		if code := send(t, n.SMTPAddr(), fmt.Sprintf("ann%d@acme.example", i), msg(i)); code != 250 {
			t.Fatalf("message %d: %d", i, code)
		}
	}
	if len(sink.Messages()) != before {
		t.Fatal("quarantined mail reached the customer")
	}

	b.login("ops@northwind.example", "correct horse battery")
	b.do(chromedp.Navigate(base+"/panel/quarantine"), chromedp.WaitVisible(chromedp.ID("quarantine")))
	if got := b.text("#quarantine tbody"); strings.Count(got, "TAGME") != 3 {
		t.Fatalf("quarantine list %q", got)
	}
	b.do(chromedp.Navigate(base+"/panel/quarantine?q=invoice+2"), chromedp.WaitVisible(chromedp.ID("quarantine")))
	if got := b.text("#quarantine tbody"); !strings.Contains(got, "Invoice 2") || strings.Contains(got, "Invoice 1") {
		t.Fatalf("search shows %q", got)
	}
	b.screenshot("quarantine")

	open := func(subject string) string {
		t.Helper()
		b.do(chromedp.Navigate(base+"/panel/quarantine?q="+strings.ReplaceAll(subject, " ", "+")), chromedp.WaitVisible(chromedp.ID("quarantine")),
			chromedp.Click(chromedp.CSS("#quarantine tbody a")), chromedp.WaitVisible(chromedp.ID("preview")))
		return b.eval(`location.pathname`)
	}
	first := open("Invoice 1")
	if got := b.text("#preview"); !strings.Contains(got, "Invoice 1 is attached, please pay.") {
		t.Errorf("preview %q", got)
	}
	if got := b.eval(`String(document.querySelectorAll("#preview *").length) + "/" + String(document.querySelectorAll("img").length)`); got != "0/0" {
		t.Errorf("the preview renders markup: elements/images %s", got)
	}
	b.screenshot("quarantined")
	b.do(chromedp.Click(chromedp.ID("release")), chromedp.WaitVisible(chromedp.CSS(".notice")))
	if got := b.text("#quarantined-state"); got != "released" {
		t.Errorf("after release the state is %q", got)
	}
	if len(sink.Messages()) != before+1 {
		t.Fatalf("after release the customer has %d new messages, want 1", len(sink.Messages())-before)
	}

	open("Invoice 2")
	b.do(chromedp.Click(chromedp.ID("release-allow")), chromedp.WaitVisible(chromedp.CSS(".notice")))
	var d struct {
		Policy struct {
			SenderAllow []string `json:"sender_allow"`
		}
	}
	if err := op.Get(ctx, fmt.Sprintf("/api/v1/domains/%d", dom), nil, &d); err != nil {
		t.Fatal(err)
	}
	if len(d.Policy.SenderAllow) != 1 || d.Policy.SenderAllow[0] != "sender@example.net" {
		t.Errorf("allow list after release and allow: %v", d.Policy.SenderAllow)
	}
	if len(sink.Messages()) != before+2 {
		t.Fatal("release and allow did not deliver")
	}

	third := open("Invoice 3")
	b.do(chromedp.Click(chromedp.ID("delete")), chromedp.WaitVisible(chromedp.ID("quarantine")))
	if got := b.text("#quarantine tbody"); strings.Contains(got, "Invoice 3") {
		t.Errorf("deleted message still listed: %q", got)
	}
	b.logout()

	b.login("admin@contoso.example", "correct horse battery")
	b.do(chromedp.Navigate(base+"/panel/quarantine?state=released"), chromedp.WaitVisible(chromedp.ID("quarantine")))
	if got := b.text("#quarantine tbody"); strings.Contains(got, "TAGME") {
		t.Errorf("Contoso lists Northwind's quarantine: %q", got)
	}
	for _, p := range []string{first, third} {
		b.do(chromedp.Navigate(base + p))
		if got := b.waitText("Not found"); strings.Contains(got, "Invoice") || !strings.Contains(got, "Not found") {
			t.Errorf("Contoso at %s sees %q", p, got)
		}
	}
	if len(sink.Messages()) != before+2 {
		t.Fatal("the customer's count changed after the releases")
	}
}

// TestPanelPreviewShowsTheHTMLMailClientsShow: a held message whose text
// part is harmless and whose HTML part, the alternative mail clients
// show, is a phish. The preview showed the text part alone, so the user
// deciding on the release never read what the recipient would; the
// HTML's visible text is shown as text (no element, nothing loaded, its
// hidden text left out).
func TestPanelPreviewShowsTheHTMLMailClientsShow(t *testing.T) {
	sink := nodetest.StartSink(t)
	f := startPanelFixture(t, []scanner.Stage{{Check: nodetest.TagBand{}, OnError: scanner.OnErrorAccept}})
	cust := f.post("/api/v1/customers", map[string]any{"name": "Acme", "reseller_id": f.resellers["northwind"]})
	f.post("/api/v1/domains", map[string]any{"name": "acme.example", "customer_id": cust, "route": sink.Addr, "tls": "none",
		"policy": map[string]any{"tag_action": "quarantine"}})
	f.acceptsMail("probe@acme.example")
	msg := "From: IT <it@vendor.example>\r\nSubject: Minutes TAGME\r\nMIME-Version: 1.0\r\n" +
		"Content-Type: multipart/alternative; boundary=b\r\n\r\n" +
		"--b\r\nContent-Type: text/plain\r\n\r\nMinutes of Thursday's meeting.\r\n" +
		"--b\r\nContent-Type: text/html\r\n\r\n<p>Your mailbox is full. <a href=\"https://evil.example/\">Verify your password</a></p>" +
		"<div style=\"display:none\">hidden words</div><img src=\"http://tracker.example/p.gif\">\r\n--b--\r\n"
	if code := send(t, f.node.SMTPAddr(), "ann@acme.example", msg); code != 250 {
		t.Fatalf("send: %d", code)
	}
	b := f.b
	b.login("ops@northwind.example", "correct horse battery")
	b.do(chromedp.Navigate(f.base+"/panel/quarantine?q=minutes"), chromedp.WaitVisible(chromedp.ID("quarantine")),
		chromedp.Click(chromedp.CSS("#quarantine tbody a")), chromedp.WaitVisible(chromedp.ID("preview")))
	if got := b.text("main"); !strings.Contains(got, "Verify your password") || strings.Contains(got, "hidden words") {
		t.Fatalf("the page does not show what mail clients show of the HTML (or shows its hidden text): %q", got)
	}
	if got := b.text("#preview-html"); !strings.Contains(got, "Your mailbox is full.") {
		t.Errorf("HTML preview %q", got)
	}
	if got := b.eval(`String(document.querySelectorAll("pre.preview *").length) + "/" + String(document.querySelectorAll("img").length)`); got != "0/0" {
		t.Errorf("the preview renders markup: elements/images %s", got)
	}
}

// TestPanelPreviewSaysTheHTMLWasNotReadWhole: a held message whose HTML
// puts its phish past what the scanner reads (1 MiB of empty tags first)
// was previewed as its harmless text part alone, nothing on the page
// saying that the HTML the recipient's client shows went on. The page
// now says so, and shows nothing of the sender's markup in saying it.
func TestPanelPreviewSaysTheHTMLWasNotReadWhole(t *testing.T) {
	sink := nodetest.StartSink(t)
	f := startPanelFixture(t, []scanner.Stage{{Check: nodetest.TagBand{}, OnError: scanner.OnErrorAccept}})
	cust := f.post("/api/v1/customers", map[string]any{"name": "Acme", "reseller_id": f.resellers["northwind"]})
	f.post("/api/v1/domains", map[string]any{"name": "acme.example", "customer_id": cust, "route": sink.Addr, "tls": "none",
		"policy": map[string]any{"tag_action": "quarantine"}})
	f.acceptsMail("probe@acme.example")
	for _, tc := range []struct {
		subject, html string
		cut           bool
	}{
		{"Padded", strings.Repeat("<b></b>", 200000) + "<p>Verify your password at evil.example</p>", true},
		{"Short", "<p>Minutes of <b>Thursday</b>.</p>", false},
	} {
		msg := "From: IT <it@vendor.example>\r\nSubject: " + tc.subject + " TAGME\r\nMIME-Version: 1.0\r\n" +
			"Content-Type: multipart/alternative; boundary=b\r\n\r\n" +
			"--b\r\nContent-Type: text/plain\r\n\r\nMinutes of Thursday.\r\n" +
			"--b\r\nContent-Type: text/html\r\n\r\n" + tc.html + "\r\n--b--\r\n"
		if code := send(t, f.node.SMTPAddr(), "ann@acme.example", msg); code != 250 {
			t.Fatalf("send %s: %d", tc.subject, code)
		}
	}
	b := f.b
	b.login("ops@northwind.example", "correct horse battery")
	for _, tc := range []struct {
		q   string
		cut bool
	}{{"padded", true}, {"short", false}} {
		b.do(chromedp.Navigate(f.base+"/panel/quarantine?q="+tc.q), chromedp.WaitVisible(chromedp.ID("quarantine")),
			chromedp.Click(chromedp.CSS("#quarantine tbody a")), chromedp.WaitVisible(chromedp.ID("preview")))
		got := b.eval(`String(document.querySelectorAll("#preview-html-cut").length)`)
		if want := map[bool]string{true: "1", false: "0"}[tc.cut]; got != want {
			t.Errorf("%s: %s notices that the HTML was not read whole, want %s; page: %.300q", tc.q, got, want, b.text("main"))
		}
	}
}
