package scanner_test

import (
	"context"
	"io"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/mxgrid/mxgrid/scanner"
	"github.com/mxgrid/mxgrid/scanner/model"
	"github.com/mxgrid/mxgrid/scanner/rules"
)

// spamHTML is the visible part of a typical advance-fee spam: what the
// blind-spot tests hide behind a parser limit.
const spamHTML = `<p>CONGRATULATIONS!!! You have WON $1,000,000.00 USD in our international lottery!</p>
<p>To claim your prize, send your full name, bank account number and a processing fee of $99 today.</p>
<p>Act now, this offer expires in 24 hours. Click <a href="http://192.0.2.7/claim">http://www.prize-claims.example/</a></p>
<p>100% FREE, no risk, guaranteed cash. Reply with your credit card details to remove yourself.</p>`

// contentPipeline is the verdict of the offline checks (model and rules),
// the ones that read a message's text.
func contentPipeline(t *testing.T) *scanner.Pipeline {
	t.Helper()
	m, err := model.Default()
	if err != nil {
		t.Fatal(err)
	}
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	stages := []scanner.Stage{
		scanner.NewStage(model.NewCheck(m, nil), scanner.StageConfig{OnError: scanner.OnErrorAccept}),
		scanner.NewStage(rules.New(nil), scanner.StageConfig{OnError: scanner.OnErrorAccept}),
	}
	return scanner.NewPipeline(stages, 10*time.Second, log, prometheus.NewRegistry())
}

func htmlMessage(body string) []byte {
	return []byte("From: Lottery Board <board@lottery.example>\r\nTo: bob@example.net\r\nSubject: Notification\r\n" +
		"Date: Mon, 23 Nov 2026 10:00:00 +0000\r\nMessage-ID: <1@lottery.example>\r\nMIME-Version: 1.0\r\n" +
		"Content-Type: text/html; charset=utf-8\r\n\r\n" + strings.ReplaceAll(body, "\n", "\r\n") + "\r\n")
}

// TestBlindSpotsAreJudged: text placed after what once blinded the parser
// (an element stack overflowed before a <style>) is still read by the model
// and the rules, and spam there is judged as spam. The same prefix before
// innocent text stays clean, so the verdict comes from the text.
func TestBlindSpotsAreJudged(t *testing.T) {
	p := contentPipeline(t)
	policy := scanner.DefaultConfig().Policy()
	deepDivs := strings.Repeat("<div>", 300) + "<style>x</style>"
	tinyParts := func(html string) []byte {
		var b strings.Builder
		b.WriteString("From: Lottery Board <board@lottery.example>\r\nTo: bob@example.net\r\nSubject: Notification\r\n" +
			"Date: Mon, 23 Nov 2026 10:00:00 +0000\r\nMessage-ID: <2@lottery.example>\r\nMIME-Version: 1.0\r\n" +
			"Content-Type: multipart/mixed; boundary=\"b\"\r\n\r\n")
		for range 205 {
			b.WriteString("--b\r\nContent-Type: text/plain\r\n\r\n.\r\n")
		}
		b.WriteString("--b\r\nContent-Type: text/html; charset=utf-8\r\n\r\n" + strings.ReplaceAll(html, "\n", "\r\n") + "\r\n--b--\r\n")
		return []byte(b.String())
	}
	for _, tt := range []struct {
		name   string
		raw    []byte
		seen   string // substring the parser must show the checks
		action scanner.Action
	}{
		{"spam after 300 nested div and a style", htmlMessage(deepDivs + spamHTML), "international lottery", scanner.Tag},
		{"ham after 300 nested div and a style", htmlMessage(deepDivs + "<p>Hi Bob, the minutes of Tuesday's meeting are attached. Regards, Alice</p>"), "minutes of Tuesday", scanner.Deliver},
		// Past the part limit the text is still read; the limit itself
		// tags (MIME_TOO_COMPLEX), and the spam text behind it rejects.
		{"spam after 205 tiny parts", tinyParts(spamHTML), "international lottery", scanner.Reject},
	} {
		t.Run(tt.name, func(t *testing.T) {
			msg := scanner.Parse(tt.raw)
			if !strings.Contains(msg.HTML.Text, tt.seen) {
				t.Fatalf("visible text lost %q: %.200q", tt.seen, msg.HTML.Text)
			}
			v := p.Scan(context.Background(), &scanner.Envelope{}, msg, policy)
			if tt.action == scanner.Deliver && v.Action != scanner.Deliver || tt.action != scanner.Deliver && v.Action < tt.action {
				t.Errorf("action = %v (score %.2f, %s), want %v or stronger", v.Action, v.Score, scanner.SymbolNames(v.Symbols), tt.action)
			}
		})
	}
}
