package dnsresolver

import (
	"bytes"
	"reflect"
	"testing"

	"golang.org/x/net/dns/dnsmessage"
)

// FuzzCapAnswer: an answer, which the server of any name a sender
// chooses writes, is passed on as it came or cut to a message that
// parses, with the same header and question, its CNAME records and its
// first maxAddressRecords addresses of the type asked, in their order.
func FuzzCapAnswer(f *testing.F) {
	name := dnsmessage.MustNewName("a.test.")
	for _, n := range []int{1, maxAddressRecords + 1, 40} {
		for _, typ := range []dnsmessage.Type{dnsmessage.TypeA, dnsmessage.TypeAAAA} {
			msg := dnsmessage.Message{
				Header:    dnsmessage.Header{ID: 7, Response: true},
				Questions: []dnsmessage.Question{{Name: name, Type: typ, Class: dnsmessage.ClassINET}},
				Answers: []dnsmessage.Resource{{
					Header: dnsmessage.ResourceHeader{Name: name, Type: dnsmessage.TypeCNAME, Class: dnsmessage.ClassINET},
					Body:   &dnsmessage.CNAMEResource{CNAME: name},
				}},
			}
			for i := range n {
				h := dnsmessage.ResourceHeader{Name: name, Type: typ, Class: dnsmessage.ClassINET, TTL: uint32(i)}
				if typ == dnsmessage.TypeA {
					msg.Answers = append(msg.Answers, dnsmessage.Resource{Header: h, Body: &dnsmessage.AResource{A: [4]byte{10, 0, 0, byte(i)}}})
				} else {
					msg.Answers = append(msg.Answers, dnsmessage.Resource{Header: h, Body: &dnsmessage.AAAAResource{AAAA: [16]byte{15: byte(i)}}})
				}
			}
			packed, err := msg.Pack()
			if err != nil {
				f.Fatal(err)
			}
			f.Add(packed)
		}
	}
	f.Fuzz(func(t *testing.T, msg []byte) {
		in := bytes.Clone(msg)
		out, err := capAnswer(msg)
		if err != nil || bytes.Equal(out, in) {
			return
		}
		var p dnsmessage.Parser
		h, err := p.Start(in)
		if err != nil {
			t.Fatalf("cut an answer that does not parse: %v", err)
		}
		q, err := p.Question()
		if err != nil {
			t.Fatal(err)
		}
		if err := p.SkipAllQuestions(); err != nil {
			t.Fatal(err)
		}
		// Records dropped need not parse past their headers.
		var want []dnsmessage.Resource
		addrs := 0
		for {
			rh, err := p.AnswerHeader()
			if err == dnsmessage.ErrSectionDone {
				break
			} else if err != nil {
				t.Fatalf("cut an answer whose records do not parse: %v", err)
			}
			if rh.Type == q.Type {
				addrs++
			}
			if rh.Type != dnsmessage.TypeCNAME && (rh.Type != q.Type || addrs > maxAddressRecords) {
				if err := p.SkipAnswer(); err != nil {
					t.Fatal(err)
				}
				continue
			}
			r, err := p.Answer()
			if err != nil {
				t.Fatalf("cut an answer whose kept records do not parse: %v", err)
			}
			want = append(want, r)
		}
		var cut dnsmessage.Message
		if err := cut.Unpack(out); err != nil {
			t.Fatalf("the cut answer does not parse: %v", err)
		}
		if cut.Header != h || len(cut.Questions) != 1 || cut.Questions[0] != q {
			t.Fatalf("cut: header %+v, questions %+v; want %+v and %+v", cut.Header, cut.Questions, h, q)
		}
		// A record's length is its encoding's: a name compressed in the
		// answer may be written whole when rebuilt (or the other way).
		for _, rs := range [][]dnsmessage.Resource{cut.Answers, want} {
			for i := range rs {
				rs[i].Header.Length = 0
			}
		}
		if !reflect.DeepEqual(cut.Answers, want) {
			t.Fatalf("cut to %d records, want %d", len(cut.Answers), len(want))
		}
	})
}
