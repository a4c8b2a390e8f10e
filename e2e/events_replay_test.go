package e2e

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"net"
	"net/netip"
	"net/textproto"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/emersion/go-smtp"
	"github.com/pires/go-proxyproto"

	"github.com/mxgrid/mxgrid/config"
	"github.com/mxgrid/mxgrid/events"
	"github.com/mxgrid/mxgrid/geo"
	"github.com/mxgrid/mxgrid/geo/geotest"
	"github.com/mxgrid/mxgrid/internal/nodetest"
	"github.com/mxgrid/mxgrid/internal/testenv"
	"github.com/mxgrid/mxgrid/store"
)

// replayFirstExternalHop is the corpus's sender address: the first public
// address named by the Received chain, top down.
func replayFirstExternalHop(header textproto.MIMEHeader) (netip.Addr, bool) {
	for _, v := range header.Values("Received") {
		if ip, ok := events.ReceivedFrom(v); ok && geo.Public(ip) {
			return ip, true
		}
	}
	return netip.Addr{}, false
}

// TestReplaySpamCorpus replays the spam corpus through a real node over
// SMTP, each message arriving (PROXY protocol) from its first external hop:
// every refused or tagged message must become one stored event, located
// exactly when the GeoIP database knows its address.
func TestReplaySpamCorpus(t *testing.T) {
	files, err := filepath.Glob(filepath.Join(testenv.SharedCorpus(t), "spam", "*.eml"))
	if err != nil || len(files) == 0 {
		t.Fatalf("no spam corpus: %v", err)
	}
	type msg struct {
		body []byte
		ip   netip.Addr
	}
	var msgs []msg
	known := map[netip.Addr]bool{}
	var records []geotest.Record
	for _, f := range files {
		raw, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		if bytes.HasPrefix(raw, []byte("From ")) { // mbox separator, not a header
			raw = raw[bytes.IndexByte(raw, '\n')+1:]
		}
		h, _ := textproto.NewReader(bufio.NewReader(bytes.NewReader(raw))).ReadMIMEHeader()
		ip, ok := replayFirstExternalHop(h)
		if !ok {
			continue
		}
		msgs = append(msgs, msg{raw, ip})
		// The database knows every other source.
		if _, seen := known[ip]; !seen {
			known[ip] = len(known)%2 == 0
			if known[ip] {
				records = append(records, geotest.Record{Network: netip.PrefixFrom(ip, ip.BitLen()).String(),
					Country: "NL", CountryName: "Netherlands", City: "Amsterdam", Lat: 52.37, Lon: 4.89, AccuracyKM: 50})
			}
		}
	}
	if len(msgs) < len(files)/2 {
		t.Fatalf("only %d of %d corpus messages have an external hop", len(msgs), len(files))
	}

	node, sink := nodetest.StartWithSink(t, func(cfg *config.Config) {
		cfg.SMTP.TrustedProxies = []string{"127.0.0.1/32"}
		cfg.Geo.Database = filepath.Join(t.TempDir(), "city.mmdb")
		geotest.WriteCity(t, cfg.Geo.Database, geotest.Options{}, records)
		cfg.Events.FlushInterval = 10 * time.Millisecond
	})
	cfg := node.Config

	// Refused messages per source; tagged ones reach the sink, which cannot
	// say which connection they came from, so they are only counted.
	recorded := map[netip.Addr]int{}
	var rejected, tagged, delivered int
	for _, m := range msgs {
		code := replaySend(t, node.SMTPAddr(), m.ip, m.body)
		switch {
		case code >= 500:
			rejected++
			recorded[m.ip]++
		case code != 250:
			t.Fatalf("message from %s: reply %d", m.ip, code)
		}
	}
	for _, r := range sink.Messages() {
		if bytes.Contains(r.Data, []byte("X-Spam-Flag: YES")) {
			tagged++
		} else {
			delivered++
		}
	}
	node.Stop(t) // the recorder flushes what it holds

	s, err := store.Open(store.Config{Driver: store.SQLite, DSN: filepath.Join(cfg.DataDir, "mxgrid.db"), Timeout: 10 * time.Second}, "")
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	stored := map[netip.Addr]int{}
	var total, located int
	err = s.RecentEvents(context.Background(), 0, time.Time{}, func(e store.StoredEvent) error {
		total++
		stored[e.IP]++
		if e.Located != known[e.IP] {
			t.Errorf("event from %s: located=%v, database knows it: %v", e.IP, e.Located, known[e.IP])
		}
		if e.Located {
			located++
			if e.City != "Amsterdam" || e.Country != "NL" {
				t.Errorf("event from %s located at %s/%s", e.IP, e.Country, e.City)
			}
		}
		if e.Node != cfg.Node.Name || e.Domain != "example.org" || e.Action == "" || len(e.Symbols) == 0 {
			t.Errorf("incomplete event %+v", e)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("%d messages: %d rejected, %d tagged, %d delivered; %d events stored, %d located",
		len(msgs), rejected, tagged, delivered, total, located)
	if total != rejected+tagged {
		t.Fatalf("%d events stored for %d refused and %d tagged messages", total, rejected, tagged)
	}
	for ip, n := range recorded {
		if stored[ip] < n {
			t.Errorf("source %s: %d refused messages, %d events", ip, n, stored[ip])
		}
	}
	if rejected == 0 || located == 0 {
		t.Fatalf("the replay proved little: %d rejected, %d located", rejected, located)
	}
}

// replaySend delivers one message from src through a PROXY v2 header and returns
// the final reply code.
func replaySend(t *testing.T, addr string, src netip.Addr, body []byte) int {
	t.Helper()
	conn, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	from := net.TCPAddrFromAddrPort(netip.AddrPortFrom(src, 40000))
	if _, err := proxyproto.HeaderProxyFromAddrs(2, from, conn.RemoteAddr()).WriteTo(conn); err != nil {
		t.Fatal(err)
	}
	c := smtp.NewClient(conn)
	defer c.Close()
	if err := c.Hello("sender.test"); err != nil {
		t.Fatal(err)
	}
	if err := c.Mail("spammer@sender.test", nil); err != nil {
		t.Fatal(err)
	}
	if err := c.Rcpt("victim@example.org", nil); err != nil {
		t.Fatal(err)
	}
	w, err := c.Data()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := w.Write(body); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		var se *smtp.SMTPError
		if errors.As(err, &se) {
			return se.Code
		}
		t.Fatal(err)
	}
	_ = c.Quit()
	return 250
}
