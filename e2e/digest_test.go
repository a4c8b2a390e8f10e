package e2e

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"mime/quotedprintable"
	"net/http"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/emersion/go-smtp"

	"github.com/mxgrid/mxgrid/config"
	"github.com/mxgrid/mxgrid/internal/nodetest"
	"github.com/mxgrid/mxgrid/internal/smtptest"
	"github.com/mxgrid/mxgrid/internal/testenv"
	"github.com/mxgrid/mxgrid/notify"
	"github.com/mxgrid/mxgrid/scanner"
	"github.com/mxgrid/mxgrid/store"
)

// digestKey signs the test nodes' links; the test signs an expired one.
var digestKey = func() []byte {
	k := make([]byte, 32)
	rand.Read(k)
	return k
}()

// digestNode runs a node that quarantines example.org's tag band and
// sends digests through smarthost every 100 ms (the period stays a day).
func digestNode(t *testing.T, name, customer, smarthost string, mutate func(*config.Config), extra ...scanner.Stage) *nodetest.Node {
	t.Helper()
	return quarantineNode(t, customer, func(cfg *config.Config) {
		cfg.Node.Name = name
		cfg.HTTP.PublicURL = "https://filter.example"
		cfg.Notify.Smarthost = smarthost
		cfg.Notify.SmarthostTLS = notify.TLSNone
		cfg.Notify.From = "quarantine@filter.example"
		cfg.Notify.CheckInterval = 100 * time.Millisecond
		cfg.Notify.LinkKeys = []string{base64.StdEncoding.EncodeToString(digestKey)}
		if mutate != nil {
			mutate(cfg)
		}
	}, extra...)
}

// holdFor sends a tag-band message to rcpt.
func holdFor(t *testing.T, n *nodetest.Node, rcpt, subject string) {
	t.Helper()
	msg := strings.Replace(tagBandMessage, "Subject: Invoice TAGME", "Subject: "+subject+" TAGME", 1)
	if code, reply := smtptest.Send(t, n.SMTPAddr(), "x@sender.example", rcpt, []byte(msg)); code != 250 {
		t.Fatalf("hold for %s: %d %s", rcpt, code, reply)
	}
}

// digestsBy waits for the smarthost to have want digests and returns them
// by recipient.
func digestsBy(t *testing.T, smarthost *smtptest.Sink, want int) map[string][]string {
	t.Helper()
	var got map[string][]string
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
		got = map[string][]string{}
		n := 0
		for _, m := range smarthost.Messages() {
			got[m.Rcpts[0]] = append(got[m.Rcpts[0]], digestText(t, m.Data))
			n++
		}
		if n >= want {
			break
		}
	}
	return got
}

// digestText is a digest's header as sent and its body decoded: the body
// is quoted-printable, which folds a long link across lines.
func digestText(t *testing.T, raw []byte) string {
	t.Helper()
	head, body, ok := bytes.Cut(raw, []byte("\r\n\r\n"))
	if !ok {
		t.Fatalf("a digest without a body:\n%s", raw)
	}
	text, err := io.ReadAll(quotedprintable.NewReader(bytes.NewReader(body)))
	if err != nil {
		t.Fatalf("a digest's body is not quoted-printable: %v\n%s", err, raw)
	}
	return string(head) + "\r\n\r\n" + string(text)
}

var releaseLink = regexp.MustCompile(`https://filter\.example(/q/release/[A-Za-z0-9_\-.]+)`)

// follow opens a link's path on node n: GET, or POST to confirm.
func follow(t *testing.T, n *nodetest.Node, method, path string) (int, string) {
	t.Helper()
	req, _ := http.NewRequest(method, "http://"+n.HTTPAddr()+path, nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// TestDigestEndToEnd: the smarthost (an SMTP sink) receives one digest per
// recipient, branded with the domain's reseller; its release link shows a
// confirmation page, then delivers the message once; the link used again,
// an expired link and an altered one are refused.
func TestDigestEndToEnd(t *testing.T) {
	smarthost := smtptest.StartSink(t)
	customer := smtptest.StartSink(t)
	n := digestNode(t, "digest-node", customer.Addr, smarthost.Addr, func(cfg *config.Config) {
		cfg.Domains = nil // the domain comes from the store, with its reseller's brand
	})
	reseller := apiPost(t, n, "/api/v1/resellers", map[string]any{"name": "Northwind Hosting"})
	cust := apiPost(t, n, "/api/v1/customers", map[string]any{"name": "Acme", "reseller_id": reseller})
	apiPost(t, n, "/api/v1/domains", map[string]any{"name": "example.org", "customer_id": cust, "route": customer.Addr, "tls": "none",
		"policy": map[string]any{"tag_action": "quarantine"}})
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		if code, _ := smtptest.Send(t, n.SMTPAddr(), "x@sender.example", "probe@example.org", []byte("Subject: hi\r\n\r\nhi\r\n")); code == 250 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the stored domain never accepted mail")
		}
	}
	before := len(customer.Messages())
	// The smarthost defers digests while the mail is held: a check between
	// two holds (every 100 ms; on a busy machine it came) sent ann a digest
	// of her first message alone.
	smarthost.RejectMail(&smtp.SMTPError{Code: 451, EnhancedCode: smtp.EnhancedCode{4, 3, 0}, Message: "not yet"})
	holdFor(t, n, "ann@example.org", "First")
	holdFor(t, n, "ann@example.org", "Second")
	holdFor(t, n, "bob@example.org", "Third")
	smarthost.RejectMail(nil)

	got := digestsBy(t, smarthost, 2)
	time.Sleep(300 * time.Millisecond) // three more checks: nothing more may come
	if len(smarthost.Messages()) != 2 || len(got["ann@example.org"]) != 1 || len(got["bob@example.org"]) != 1 {
		t.Fatalf("digests: %d in all, by recipient %v", len(smarthost.Messages()), keys(got))
	}
	ann := got["ann@example.org"][0]
	for _, want := range []string{"Northwind Hosting", "First TAGME", "Second TAGME", "quarantine@filter.example"} {
		if !strings.Contains(ann, want) {
			t.Errorf("ann's digest lacks %q:\n%s", want, ann)
		}
	}
	if strings.Contains(ann, "Third TAGME") {
		t.Error("ann's digest lists bob's message")
	}
	links := releaseLink.FindAllStringSubmatch(ann, -1)
	if len(links) != 2 {
		t.Fatalf("ann's digest has %d release links:\n%s", len(links), ann)
	}
	path := links[0][1]

	if code, body := follow(t, n, "GET", path); code != 200 || !strings.Contains(body, "Release this message?") {
		t.Fatalf("GET link: %d %s", code, body)
	}
	// A link checker's HEAD, as mail gateways send to every link, is no
	// confirmation either.
	if code, _ := follow(t, n, "HEAD", path); code != 200 {
		t.Fatalf("HEAD link: %d", code)
	}
	if len(customer.Messages()) != before {
		t.Fatal("opening the link (GET, HEAD) released the message")
	}
	if code, body := follow(t, n, "POST", path); code != 200 || !strings.Contains(body, "Released") {
		t.Fatalf("POST link: %d %s", code, body)
	}
	if len(customer.Messages()) != before+1 {
		t.Fatalf("after the release the customer has %d new messages, want 1", len(customer.Messages())-before)
	}
	if code, _ := follow(t, n, "POST", path); code != http.StatusConflict {
		t.Fatalf("reused link: %d, want 409", code)
	}
	if code, _ := follow(t, n, "GET", path); code != http.StatusConflict {
		t.Fatalf("reused link (GET): %d, want 409", code)
	}
	token := strings.TrimPrefix(path, "/q/release/")
	link, err := notify.Parse(token, [][]byte{digestKey}, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	link.Expires = time.Now().Add(-time.Minute)
	if code, _ := follow(t, n, "POST", "/q/release/"+notify.Sign(link, digestKey)); code != http.StatusGone {
		t.Fatalf("expired link: %d, want 410", code)
	}
	other := links[1][1]
	tampered := other[:len(other)-3] + flip(other[len(other)-3:])
	if code, _ := follow(t, n, "POST", tampered); code != http.StatusForbidden {
		t.Fatalf("tampered link: %d, want 403", code)
	}
	// A link for ann cannot release bob's message: re-sign the payload
	// with another item id and it is no longer ours.
	forged := strings.Replace(other, "/q/release/", "/q/release/x", 1)
	if code, _ := follow(t, n, "POST", forged); code != http.StatusForbidden {
		t.Fatalf("forged link: %d, want 403", code)
	}
	if len(customer.Messages()) != before+1 {
		t.Fatal("a refused link delivered something")
	}

	// Bob opts out: GET asks, POST records it.
	optout := regexp.MustCompile(`https://filter\.example(/q/optout/[A-Za-z0-9_\-.]+)`).FindStringSubmatch(got["bob@example.org"][0])
	if optout == nil {
		t.Fatalf("bob's digest has no opt-out link:\n%s", got["bob@example.org"][0])
	}
	if code, body := follow(t, n, "GET", optout[1]); code != 200 || !strings.Contains(body, "Stop quarantine digests?") {
		t.Fatalf("GET opt-out: %d %s", code, body)
	}
	st, err := store.Open(store.Config{Driver: store.SQLite, DSN: filepath.Join(n.Config.DataDir, "mxgrid.db"), Timeout: 5 * time.Second}, "")
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	opted, err := notify.Parse(strings.TrimPrefix(optout[1], "/q/optout/"), [][]byte{digestKey}, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	if code, _ := follow(t, n, "HEAD", optout[1]); code != 200 {
		t.Fatalf("HEAD opt-out: %d", code)
	}
	if out, err := st.OptedOut(context.Background(), opted.ItemID, opted.CustomerID, "bob@example.org"); err != nil || out {
		t.Fatalf("after HEAD of the opt-out link, bob opted out: %v %v", out, err)
	}
	if code, body := follow(t, n, "POST", optout[1]); code != 200 || !strings.Contains(body, "Digests stopped") {
		t.Fatalf("POST opt-out: %d %s", code, body)
	}
	if out, err := st.OptedOut(context.Background(), opted.ItemID, opted.CustomerID, "bob@example.org"); err != nil || !out {
		t.Fatalf("bob opted out: %v %v", out, err)
	}
}

func flip(s string) string {
	b := []byte(s)
	for i := range b {
		if b[i] == 'A' {
			b[i] = 'B'
		} else {
			b[i] = 'A'
		}
	}
	return string(b)
}

func keys(m map[string][]string) map[string]int {
	out := map[string]int{}
	for k, v := range m {
		out[k] = len(v)
	}
	return out
}

// apiPost creates an object as the operator and returns its id.
func apiPost(t *testing.T, n *nodetest.Node, path string, body any) int64 {
	t.Helper()
	b, _ := json.Marshal(body)
	req, _ := http.NewRequest("POST", "http://"+n.HTTPAddr()+path, bytes.NewReader(b))
	req.Header.Set("Authorization", "Bearer "+quarantineToken)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var obj struct{ ID int64 }
	out, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusCreated || json.Unmarshal(out, &obj) != nil {
		t.Fatalf("POST %s: %d %s", path, resp.StatusCode, out)
	}
	return obj.ID
}

// TestDigestTwoLeaders: two nodes on one PostgreSQL store that do not see
// each other (no join list: each leads its own cluster, as in a network
// partition) both run the digest job; each recipient gets one digest.
func TestDigestTwoLeaders(t *testing.T) {
	dsn := testenv.PostgresDB(t)
	smarthost := smtptest.StartSink(t)
	customer := smtptest.StartSink(t)
	pg := func(cfg *config.Config) {
		cfg.Store = store.Config{Driver: store.Postgres, DSN: dsn, Timeout: 5 * time.Second}
	}
	a := digestNode(t, "leader-a", customer.Addr, smarthost.Addr, pg)
	b := digestNode(t, "leader-b", customer.Addr, smarthost.Addr, pg)
	for i, rcpt := range []string{"ann@example.org", "bob@example.org", "cat@example.org", "dan@example.org"} {
		holdFor(t, []*nodetest.Node{a, b}[i%2], rcpt, fmt.Sprint("M", i))
	}
	got := digestsBy(t, smarthost, 4)
	time.Sleep(500 * time.Millisecond) // both nodes check five more times
	if n := len(smarthost.Messages()); n != 4 {
		t.Fatalf("%d digests for 4 recipients: %v", n, keys(got))
	}
	for r, ds := range got {
		if len(ds) != 1 {
			t.Errorf("%s got %d digests", r, len(ds))
		}
	}
}

// quotedTagBand scores a message whose text says "TAGME" in the tag band,
// as nodetest.TagBand scores such a subject: a digest quotes the subjects
// (and senders) of the spam it lists, and the model reads them there as
// it read them in the spam (the built-in model put each of three digests
// listing 60 of its corpus's tag-band subjects in the tag band).
type quotedTagBand struct{}

func (quotedTagBand) Name() string { return "quoted_tag_band" }

func (quotedTagBand) Check(_ context.Context, _ *scanner.Envelope, m *scanner.Message) (scanner.Result, error) {
	if strings.Contains(m.Text, "TAGME") {
		return scanner.Result{Symbols: []scanner.Symbol{{Name: "TEST_QUOTED_TAG_BAND", Score: 8}}}, nil
	}
	return scanner.Result{}, nil
}

// TestDigestThroughTheFilterReachesItsRecipient: the smarthost delivers a
// digest to its recipient's MX, which is this cluster; there the digest,
// which lists the held spam's subjects, was scanned as any mail and put in
// the tag band, so on a domain that quarantines it was held itself, never
// seen, and listed in the next digest. A digest the cluster signed reaches
// its recipient untagged; one changed on the way, or sent to another
// recipient, is scanned as any mail.
func TestDigestThroughTheFilterReachesItsRecipient(t *testing.T) {
	smarthost := smtptest.StartSink(t)
	customer := smtptest.StartSink(t)
	n := digestNode(t, "digest-node", customer.Addr, smarthost.Addr, nil, scanner.Stage{Check: quotedTagBand{}, OnError: scanner.OnErrorAccept})
	holdFor(t, n, "ann@example.org", "First")
	digestsBy(t, smarthost, 1)
	digest := smarthost.Messages()[0]
	held := func() int {
		_, body := api(t, n, "GET", "/api/v1/quarantine?state=held")
		var list struct{ Items []struct{ ID int64 } }
		if err := json.Unmarshal(body, &list); err != nil {
			t.Fatal(err)
		}
		return len(list.Items)
	}
	// As the smarthost's delivery to the recipient's MX.
	if code, reply := smtptest.Send(t, n.SMTPAddr(), digest.From, digest.Rcpts[0], digest.Data); code != 250 {
		t.Fatalf("the digest, at the MX: %d %s", code, reply)
	}
	got := customer.Messages()
	if len(got) != 1 || !bytes.Contains(got[0].Data, []byte("held for you")) || bytes.Contains(got[0].Data, []byte("X-Spam-Flag")) {
		t.Fatalf("the customer has %d messages, want the digest untagged (quarantine holds %d)", len(got), held())
	}
	for _, tc := range []struct {
		name, rcpt string
		data       []byte
	}{
		{"changed", digest.Rcpts[0], bytes.Replace(digest.Data, []byte("Release:"), []byte("Releaze:"), 1)},
		{"to another recipient", "bob@example.org", digest.Data},
	} {
		before := held()
		if code, reply := smtptest.Send(t, n.SMTPAddr(), digest.From, tc.rcpt, tc.data); code != 250 {
			t.Fatalf("%s: %d %s", tc.name, code, reply)
		}
		if held() != before+1 || len(customer.Messages()) != 1 {
			t.Errorf("%s: not scanned as any mail (held %d, was %d; the customer has %d)", tc.name, held(), before, len(customer.Messages()))
		}
	}
}

// TestDigestShowsALookAlikeSendersALabel: a digest is read by the
// recipient to decide on a release, and names each message's sender. An
// SMTPUTF8 sender at a domain of Cyrillic letters that look Latin
// ("аррӏе.example") read there exactly as the domain it imitates: browsers
// and mail readers show such a name as its A-label for that reason, and
// the digest, plain text, cannot rely on the reader's client to. The
// A-label follows the domain, in the digest and on the link's page.
func TestDigestShowsALookAlikeSendersALabel(t *testing.T) {
	smarthost := smtptest.StartSink(t)
	n := digestNode(t, "idn-node", smtptest.StartSink(t).Addr, smarthost.Addr, nil)
	const sender = "service@\u0430\u0440\u0440\u04cf\u0435.example"
	c, err := smtp.Dial(n.SMTPAddr())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	send := func() error {
		if err := c.Hello("client.sender.example"); err != nil {
			return err
		}
		if err := c.Mail(sender, &smtp.MailOptions{UTF8: true}); err != nil {
			return err
		}
		if err := c.Rcpt("ann@example.org", nil); err != nil {
			return err
		}
		w, err := c.Data()
		if err != nil {
			return err
		}
		if _, err := io.WriteString(w, strings.Replace(tagBandMessage, "Subject: Invoice TAGME", "Subject: Account locked TAGME", 1)); err != nil {
			return err
		}
		return w.Close()
	}
	if err := send(); err != nil {
		t.Fatalf("hold from %s: %v", sender, err)
	}
	const aLabel = "xn--80ak6aa92e.example"
	digest := digestsBy(t, smarthost, 1)["ann@example.org"]
	if len(digest) != 1 || !strings.Contains(digest[0], sender+" ("+aLabel+")") {
		t.Fatalf("the digest does not name the sender's A-label %s:\n%s", aLabel, digest)
	}
	links := releaseLink.FindAllStringSubmatch(digest[0], -1)
	if len(links) != 1 {
		t.Fatalf("%d release links", len(links))
	}
	if code, body := follow(t, n, "GET", links[0][1]); code != 200 || !strings.Contains(body, aLabel) {
		t.Errorf("the link's page (%d) does not name the sender's A-label:\n%s", code, body)
	}
}
