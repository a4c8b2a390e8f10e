package panel_test

import (
	"fmt"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/mxgrid/mxgrid/internal/democorpus"
	"github.com/mxgrid/mxgrid/internal/nodetest"
	"github.com/mxgrid/mxgrid/internal/smtptest"
	"github.com/mxgrid/mxgrid/internal/testenv"
)

// send delivers data to rcpt and returns the final reply code.
func send(t *testing.T, addr, rcpt, data string) int {
	code, _ := smtptest.Send(t, addr, "sender@example.net", rcpt, []byte(data))
	return code
}

// TestPanelMessageLogInChromium: ham, spam, a virus and mail for a domain
// whose server is down are sent over SMTP; reseller Northwind finds each
// by recipient in the panel's message log, the delivered one's permalink
// with the customer server's reply, the deferred one with its reason and
// in the "waiting at senders" view. Contoso finds none of them, by any
// filter or by the permalinks' ids.
func TestPanelMessageLogInChromium(t *testing.T) {
	sink := nodetest.StartSink(t)
	down := testenv.RefusingAddr(t)
	f := startPanelFixture(t, nil) // the default pipeline: model, rules, built-in antivirus
	n, base, b := f.node, f.base, f.b
	acme := f.post("/api/v1/customers", map[string]any{"name": "Acme", "reseller_id": f.resellers["northwind"]})
	// down.example first: a node applies the change log in order, so once
	// acme.example takes mail down.example is known too (it never answers
	// 250 to be waited for itself).
	f.post("/api/v1/domains", map[string]any{"name": "down.example", "customer_id": acme, "route": down, "tls": "none"})
	f.post("/api/v1/domains", map[string]any{"name": "acme.example", "customer_id": acme, "route": sink.Addr, "tls": "none"})
	f.acceptsMail("probe@acme.example")

	ham := "From: sender@example.net\r\nSubject: Minutes of Thursday\r\nMessage-ID: <ham-1@example.net>\r\n\r\nHello Ann, the minutes are below. Regards\r\n"
	if code := send(t, n.SMTPAddr(), "ann@acme.example", ham); code != 250 {
		t.Fatalf("ham: %d", code)
	}
	virus := "From: sender@example.net\r\nSubject: Invoice\r\nMIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=b\r\n\r\n--b\r\nContent-Type: text/plain\r\n\r\nattached\r\n--b\r\nContent-Type: application/octet-stream; name=inv.com\r\n\r\n" +
		string(testenv.EICAR()) + "\r\n--b--\r\n"
	if code := send(t, n.SMTPAddr(), "vic@acme.example", virus); code != 554 {
		t.Fatalf("virus: %d", code)
	}
	if code := send(t, n.SMTPAddr(), "bob@down.example", ham); code != 451 {
		t.Fatalf("down domain: %d", code)
	}
	// Spam: the first of the embedded sample's spam the default pipeline
	// refuses.
	corpus, err := democorpus.Messages()
	if err != nil {
		t.Fatal(err)
	}
	spamRefused := false
	for _, m := range corpus {
		if m.Spam && send(t, n.SMTPAddr(), "sam@acme.example", string(m.Data)) >= 500 {
			spamRefused = true
			break
		}
	}
	if !spamRefused {
		t.Fatal("the default pipeline refused none of the sample's spam")
	}

	b.login("ops@northwind.example", "correct horse battery")
	row := func(rcpt string) string {
		t.Helper()
		var got string
		for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(100 * time.Millisecond) {
			b.do(chromedp.Navigate(base+"/panel/messages?recipient="+url.QueryEscape(rcpt)), chromedp.WaitVisible(chromedp.ID("messages")))
			if got = b.text("#messages tbody"); strings.Contains(got, rcpt) {
				return got
			}
		}
		t.Fatalf("the message log never showed %s: %q", rcpt, got)
		return ""
	}
	if got := row("ann@acme.example"); !strings.Contains(got, "delivered") {
		t.Errorf("ham row %q", got)
	}
	if got := row("sam@acme.example"); !strings.Contains(got, "refused") {
		t.Errorf("spam row %q", got)
	}
	if got := row("vic@acme.example"); !strings.Contains(got, "refused") || !strings.Contains(got, "554") {
		t.Errorf("virus row %q", got)
	}
	if got := row("bob@down.example"); !strings.Contains(got, "deferred") || !strings.Contains(got, "customer_unreachable") {
		t.Errorf("deferred row %q", got)
	}
	if got := b.text("#waiting"); !strings.Contains(got, "bob@down.example") {
		t.Errorf("waiting at senders shows %q", got)
	}
	b.screenshot("messages")

	// The delivered message's permalink: the reply chain and the verdict.
	row("ann@acme.example")
	b.do(chromedp.Click(chromedp.CSS(`#messages tbody a`)), chromedp.WaitVisible(chromedp.ID("reply-chain")))
	hamURL := b.eval(`location.pathname`)
	if got := b.text("#reply-chain"); !strings.Contains(got, "250 2.0.0") || !strings.Contains(b.text("#downstream"), "2.0.0") {
		t.Errorf("reply chain %q", got)
	}
	if got := b.text("#message-status"); got != "delivered" {
		t.Errorf("status %q", got)
	}
	b.screenshot("message")
	row("vic@acme.example")
	b.do(chromedp.Click(chromedp.CSS(`#messages tbody a`)), chromedp.WaitVisible(chromedp.ID("symbols")))
	virusURL := b.eval(`location.pathname`)
	row("bob@down.example")
	b.do(chromedp.Click(chromedp.CSS(`#messages tbody a`)), chromedp.WaitVisible(chromedp.ID("defer-reason")))
	if got := b.text("#defer-reason"); !strings.Contains(got, "could not be reached") {
		t.Errorf("defer reason %q", got)
	}

	// The reseller's charts: 24 hourly and 30 daily bars; the counters
	// arrive within domainstats' flush (10 s).
	var maxLabel string
	for deadline := time.Now().Add(30 * time.Second); time.Now().Before(deadline); time.Sleep(time.Second) {
		b.do(chromedp.Navigate(base+"/panel/customers"), chromedp.WaitVisible(chromedp.ID("chart-hourly")))
		if maxLabel = b.eval(`document.querySelector("#chart-hourly > text:last-of-type").textContent`); maxLabel != "max 0" {
			break
		}
	}
	if maxLabel == "max 0" {
		t.Error("the reseller's hourly chart stayed empty")
	}
	if got := b.eval(`document.querySelectorAll("#chart-hourly g.bar").length + "/" + document.querySelectorAll("#chart-daily g.bar").length`); got != "24/30" {
		t.Errorf("bars %s, want 24/30", got)
	}
	b.screenshot("charts")
	b.logout()

	// Contoso: nothing of Northwind's, by any filter or by id.
	b.login("admin@contoso.example", "correct horse battery")
	for _, q := range []string{"", "?recipient=ann@acme.example", "?status=deferred", "?sender=sender@example.net",
		fmt.Sprintf("?customer_id=%d", acme), "?message_id=%3Cham-1@example.net%3E", "?since=720h"} {
		b.do(chromedp.Navigate(base+"/panel/messages"+q), chromedp.WaitVisible(chromedp.ID("messages")))
		if got := b.text("body"); strings.Contains(got, "acme.example") || strings.Contains(got, "down.example") {
			t.Errorf("Contoso's message log %s shows Northwind's mail: %q", q, got)
		}
	}
	b.do(chromedp.Navigate(base+"/panel/customers"), chromedp.WaitVisible(chromedp.ID("chart-hourly")))
	if got := b.eval(`document.querySelector("#chart-hourly > text:last-of-type").textContent`); got != "max 0" {
		t.Errorf("Contoso's chart counts Northwind's mail: %q", got)
	}
	for _, p := range []string{hamURL, virusURL} {
		b.do(chromedp.Navigate(base + p))
		if got := b.waitText("Not found"); strings.Contains(got, "acme.example") || !strings.Contains(got, "Not found") {
			t.Errorf("Contoso at %s sees %q", p, got)
		}
	}
}
