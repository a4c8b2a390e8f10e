package panel_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/smtp"
	"os"
	"path"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/mxgrid/mxgrid/internal/nodetest"
	"github.com/mxgrid/mxgrid/internal/testenv"
	"github.com/mxgrid/mxgrid/scanner"
)

// spamWord makes testSpam reject a message: the test needs refusals
// without the real model's judgement (or its DNS lookups).
const spamWord = "BUY-CHEAP-PILLS"

type testSpam struct{}

func (testSpam) Name() string { return "test_spam" }

func (testSpam) Check(_ context.Context, _ *scanner.Envelope, msg *scanner.Message) (scanner.Result, error) {
	if strings.Contains(msg.Subject, spamWord) {
		return scanner.Result{Symbols: []scanner.Symbol{{Name: "TEST_SPAM", Score: 50}}}, nil
	}
	return scanner.Result{}, nil
}

type browser struct {
	t    *testing.T
	ctx  context.Context
	base string
	shot string // screenshot directory, "" for none
}

func startBrowser(t *testing.T, base string) *browser {
	path := testenv.Chromium(t)
	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(path), chromedp.NoSandbox, chromedp.DisableGPU, chromedp.WindowSize(1280, 860))
	actx, cancel := chromedp.NewExecAllocator(context.Background(), opts...)
	t.Cleanup(cancel)
	// No timeout on the first run's context: cancelling it kills the browser.
	ctx, cancel := chromedp.NewContext(actx)
	t.Cleanup(cancel)
	if err := chromedp.Do(ctx); err != nil {
		t.Fatalf("starting chromium: %v", err)
	}
	ctx, cancel = context.WithTimeout(ctx, 3*time.Minute)
	t.Cleanup(cancel)
	return &browser{t: t, ctx: ctx, base: base, shot: os.Getenv("MXGRID_PANEL_SCREENSHOTS")}
}

func (b *browser) do(steps ...chromedp.Action[chromedp.Void]) {
	b.t.Helper()
	if err := chromedp.Do(b.ctx, steps...); err != nil {
		b.t.Fatal(err)
	}
}

func (b *browser) text(sel string) string {
	b.t.Helper()
	s, err := chromedp.Run(b.ctx, chromedp.Text(chromedp.CSS(sel)))
	if err != nil {
		b.t.Fatalf("text of %s: %v", sel, err)
	}
	return s
}

func (b *browser) eval(js string) string {
	b.t.Helper()
	s, err := chromedp.Run(b.ctx, chromedp.Evaluate[string](js))
	if err != nil {
		b.t.Fatalf("eval %s: %v", js, err)
	}
	return s
}

// screenshot saves the page when MXGRID_PANEL_SCREENSHOTS names a folder.
func (b *browser) screenshot(name string) {
	b.t.Helper()
	if b.shot == "" {
		return
	}
	png, err := chromedp.Run(b.ctx, chromedp.FullScreenshot(100))
	if err != nil {
		b.t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(b.shot, name+".png"), png, 0o644); err != nil {
		b.t.Fatal(err)
	}
}

// waitText waits (boundedly) for the page to show want and returns the
// page's text.
func (b *browser) waitText(want string) string {
	b.t.Helper()
	var got string
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
		got, _ = chromedp.Run(b.ctx, chromedp.Evaluate[string](`document.body ? document.body.innerText : ""`))
		if strings.Contains(got, want) {
			break
		}
	}
	return got
}

// fill sets a form field's value from script (chromedp's SetValue refuses
// some input types and empty values).
func fill(sel, value string) chromedp.Action[chromedp.Void] {
	q, _ := json.Marshal(sel)
	v, _ := json.Marshal(value)
	return func(ctx context.Context, t *chromedp.Target) (chromedp.Void, error) {
		_, err := chromedp.Evaluate[bool](`(document.querySelector(`+string(q)+`).value = `+string(v)+`) !== undefined`)(ctx, t)
		return chromedp.Void{}, err
	}
}

func (b *browser) login(email, password string) {
	b.t.Helper()
	b.do(chromedp.Navigate(b.base+"/panel/login"), chromedp.WaitVisible(chromedp.ID("login")),
		fill("#email", email), fill("#password", password),
		chromedp.Click(chromedp.ID("login-submit")), chromedp.WaitVisible(chromedp.CSS("header.top")))
}

func (b *browser) logout() {
	b.t.Helper()
	b.do(chromedp.Click(chromedp.CSS(".logout button")), chromedp.WaitVisible(chromedp.ID("login")))
}

// createResellers logs the operator in and creates the two resellers the
// browser tests use, Northwind (ops@northwind.example) and Contoso
// (admin@contoso.example), both with the password "correct horse battery".
func (b *browser) createResellers(opToken string) {
	b.t.Helper()
	b.login("", opToken)
	for _, r := range []struct{ name, slug, email string }{
		{"Northwind Hosting", "northwind", "ops@northwind.example"},
		{"Contoso Mail", "contoso", "admin@contoso.example"},
	} {
		b.do(chromedp.Navigate(b.base+"/panel/resellers"), chromedp.WaitVisible(chromedp.ID("new-reseller")),
			fill(`#new-reseller [name=name]`, r.name),
			fill(`#new-reseller [name=slug]`, r.slug),
			fill(`#new-reseller [name=email]`, r.email),
			fill(`#new-reseller [name=password]`, "correct horse battery"),
			chromedp.Click(chromedp.CSS(`#new-reseller button`)), chromedp.WaitVisible(chromedp.CSS(".notice")))
	}
	b.logout()
}

func sendMail(t *testing.T, addr, rcpt, subject string) error {
	t.Helper()
	msg := "From: sender@example.net\r\nTo: " + rcpt + "\r\nSubject: " + subject + "\r\nMessage-ID: <" +
		fmt.Sprint(time.Now().UnixNano()) + "@example.net>\r\n\r\nHello, this is a perfectly normal message about the meeting.\r\n"
	return smtp.SendMail(addr, nil, "sender@example.net", []string{rcpt}, []byte(msg))
}

// TestPanelInChromium is the acceptance run in a real browser: the
// operator creates two resellers; the first logs in, creates a customer
// and a domain routed to a test SMTP server, whose mail then flows; the
// second does not see the first's customer; a form without its CSRF token
// is refused. The second then adds a user and changes its own password.
func TestPanelInChromium(t *testing.T) {
	sink := nodetest.StartSink(t)
	cfg := nodetest.Config(t)
	opToken := "operator-" + strings.Repeat("x", 40)
	tokFile := filepath.Join(t.TempDir(), "op.token")
	if err := os.WriteFile(tokFile, []byte(opToken), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg.Admin.OperatorTokenFile = tokFile
	n := nodetest.Start(t, cfg, []scanner.Stage{{Check: testSpam{}, OnError: scanner.OnErrorAccept}})
	base := "http://" + n.HTTPAddr()
	b := startBrowser(t, base)

	b.screenshotLogin()

	// The operator logs in with its token and creates two resellers with
	// their first users.
	b.createResellers(opToken)

	// Reseller 1: a customer, a domain routed to the sink, no TLS.
	b.login("ops@northwind.example", "correct horse battery")
	b.do(chromedp.Navigate(base+"/panel/customers"), chromedp.WaitVisible(chromedp.ID("new-customer")),
		fill("#customer-name", "Acme Corp"),
		chromedp.Click(chromedp.ID("create-customer")), chromedp.WaitVisible(chromedp.ID("new-domain")))
	if got := b.text("#customer-title"); got != "Acme Corp" {
		t.Fatalf("customer page title %q", got)
	}
	customerURL := b.eval(`location.pathname`)
	b.do(fill("#domain-tls", "none"),
		fill("#domain-name", "acme.example"),
		fill("#domain-route", sink.Addr),
		chromedp.Click(chromedp.ID("add-domain")), chromedp.WaitVisible(chromedp.ID("domain-title")))
	domainURL := b.eval(`location.pathname`)

	// "Test route" shows the sink's greeting.
	b.do(chromedp.Click(chromedp.ID("test-route-button")), chromedp.WaitVisible(chromedp.ID("route-result")))
	if got := b.text("#route-result"); !strings.Contains(got, "220 sink.test") || !strings.Contains(got, "answers SMTP") {
		t.Errorf("route test shows %q", got)
	}
	b.screenshot("domain")

	// A reseller's new domain waits for proof of ownership: its page shows
	// the TXT record to publish, and mail is refused until the operator
	// approves it (the DNS proofs are tested in the tenant package).
	if got := b.text("#domain-pending"); !strings.Contains(got, "mxgrid-verify=") {
		t.Fatalf("pending domain page shows %q, want the TXT record", got)
	}
	if err := sendMail(t, n.SMTPAddr(), "alice@acme.example", "Too early"); err == nil {
		t.Fatal("mail to a pending domain was accepted")
	}
	approve, _ := http.NewRequest(http.MethodPost, base+"/api/v1/domains/"+path.Base(domainURL)+"/approve", nil)
	approve.Header.Set("Authorization", "Bearer "+opToken)
	resp, err := http.DefaultClient.Do(approve)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("operator approval: %s", resp.Status)
	}

	// The change reaches the node's directory; then mail flows.
	deadline := time.Now().Add(20 * time.Second)
	for {
		if err = sendMail(t, n.SMTPAddr(), "alice@acme.example", "Meeting on Thursday"); err == nil || time.Now().After(deadline) {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	if err != nil {
		t.Fatalf("mail to the new domain: %v", err)
	}
	if msgs := sink.Messages(); len(msgs) != 1 || msgs[0].Rcpts[0] != "alice@acme.example" {
		t.Fatalf("sink received %+v, want the one message", msgs)
	}
	if err := sendMail(t, n.SMTPAddr(), "bob@acme.example", "Cheap "+spamWord); err == nil || !strings.Contains(err.Error(), "550") {
		t.Fatalf("spam: %v, want 550", err)
	}

	// The activity page catches up within the counters' flush interval.
	var accepted string
	for deadline := time.Now().Add(30 * time.Second); time.Now().Before(deadline); time.Sleep(time.Second) {
		b.do(chromedp.Navigate(base+domainURL+"/stats"), chromedp.WaitVisible(chromedp.ID("refused")))
		accepted = b.text(".stats .card:first-child .c-ok dd")
		if accepted == "1" && strings.Contains(b.text("#refused"), "TEST_SPAM") {
			break
		}
	}
	if accepted != "1" || !strings.Contains(b.text("#refused"), "TEST_SPAM") {
		t.Errorf("stats: accepted %q, refused table %q", accepted, b.text("#refused"))
	}
	b.screenshot("stats")

	b.do(chromedp.Navigate(base+"/panel/customers"), chromedp.WaitVisible(chromedp.ID("customers")))
	b.screenshot("customers")
	b.do(chromedp.Navigate(base+"/panel/map"), chromedp.WaitVisible(chromedp.ID("reseller-embed")))
	if got := b.eval(`document.getElementById("reseller-embed").value`); !strings.Contains(got, base+"/map?reseller=northwind") {
		t.Errorf("embed code %q", got)
	}
	b.do(chromedp.WaitVisible(chromedp.CSS("iframe.preview")))
	time.Sleep(500 * time.Millisecond) // let the framed map paint
	b.screenshot("map-embed")

	// A form posted without its CSRF token is refused and changes nothing.
	b.do(chromedp.Navigate(base+"/panel/customers"), chromedp.WaitVisible(chromedp.ID("new-customer")))
	b.eval(`document.querySelector("#new-customer [name=csrf]").remove(); "ok"`)
	b.do(fill("#customer-name", "Forged Inc"), chromedp.Click(chromedp.ID("create-customer")))
	if got := b.waitText("did not come from the panel"); !strings.Contains(got, "did not come from the panel") {
		t.Errorf("form without CSRF token answered %q", got)
	}
	b.do(chromedp.Navigate(base+"/panel/customers"), chromedp.WaitVisible(chromedp.ID("customers")))
	if strings.Contains(b.text("#customers"), "Forged") {
		t.Error("the forged form created a customer")
	}
	b.logout()

	// Reseller 2 sees none of it, in the list or by URL.
	b.login("admin@contoso.example", "correct horse battery")
	b.do(chromedp.Navigate(base+"/panel/customers"), chromedp.WaitVisible(chromedp.ID("customers")))
	if got := b.text("#customers"); strings.Contains(got, "Acme") {
		t.Errorf("second reseller sees %q", got)
	}
	for _, path := range []string{customerURL, domainURL, domainURL + "/stats"} {
		b.do(chromedp.Navigate(base + path))
		if got := b.waitText("Not found"); strings.Contains(got, "Acme") || strings.Contains(got, "acme.example") || !strings.Contains(got, "Not found") {
			t.Errorf("second reseller at %s sees %q", path, got)
		}
	}

	// Reseller 2 adds a colleague, then changes its own password, which
	// the next login needs.
	b.do(chromedp.Navigate(base+"/panel/users"), chromedp.WaitVisible(chromedp.ID("new-user")),
		fill(`#new-user [name=email]`, "colleague@contoso.example"),
		fill(`#new-user [name=password]`, "a colleague's passphrase"),
		chromedp.Click(chromedp.CSS(`#new-user button`)), chromedp.WaitVisible(chromedp.CSS(".notice")))
	if got := b.text("#users"); !strings.Contains(got, "colleague@contoso.example") || strings.Contains(got, "northwind") {
		t.Errorf("users list %q", got)
	}
	b.screenshot("users")
	b.do(chromedp.Navigate(base+"/panel/account"), chromedp.WaitVisible(chromedp.ID("change-password")),
		fill(`#change-password [name=current]`, "correct horse battery"),
		fill(`#change-password [name=new]`, "staple battery horse correct"),
		fill(`#change-password [name=confirm]`, "staple battery horse correct"),
		chromedp.Click(chromedp.CSS(`#change-password button`)), chromedp.WaitVisible(chromedp.CSS(".notice")))
	b.logout()
	b.login("admin@contoso.example", "staple battery horse correct")
}

// screenshotLogin checks the login page's CSP (no inline script) and
// captures it.
func (b *browser) screenshotLogin() {
	b.t.Helper()
	b.do(chromedp.Navigate(b.base+"/panel/login"), chromedp.WaitVisible(chromedp.ID("login")))
	resp, err := http.Get(b.base + "/panel/login")
	if err != nil {
		b.t.Fatal(err)
	}
	resp.Body.Close()
	if csp := resp.Header.Get("Content-Security-Policy"); strings.Contains(csp, "unsafe-inline") || !strings.Contains(csp, "script-src 'self'") {
		b.t.Errorf("login CSP %q", csp)
	}
	b.screenshot("login")
}
