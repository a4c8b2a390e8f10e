package dnsresolver

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"io"
	"net"

	"golang.org/x/net/dns/dnsmessage"
)

// maxAddressRecords bounds the A or AAAA records read of one answer. The
// Go resolver sorts a name's addresses by RFC 6724 before returning them,
// and to find each one's source address it opens and closes a UDP socket:
// a name of the sender's with 2,000 A records served over TCP cost 2,000
// sockets a lookup, and an SPF record's ten mx terms of ten names each
// over 3 s of CPU per identity, in the lookups' own goroutines, which the
// scan's deadline does not stop. Mail hosts, routes and DNSBL return codes
// have a few addresses; past the bound the first ones are kept.
const maxAddressRecords = 16

// dial connects to the DNS server at address (cfg.Server's, or the one
// of resolv.conf the Go resolver chose) and cuts its answers to address
// queries to maxAddressRecords records of each type.
func dial(ctx context.Context, network, address string) (net.Conn, error) {
	var d net.Dialer
	conn, err := d.DialContext(ctx, network, address)
	if err != nil {
		return nil, err
	}
	// The Go resolver frames messages for a stream unless the connection
	// is a net.PacketConn: a UDP one must stay one.
	if uc, ok := conn.(*net.UDPConn); ok {
		return packetCap{uc}, nil
	}
	return &streamCap{Conn: conn}, nil
}

// packetCap is a UDP connection whose answers are cut (capAnswer).
type packetCap struct{ *net.UDPConn }

func (c packetCap) Read(b []byte) (int, error) {
	n, err := c.UDPConn.Read(b)
	if err != nil {
		return n, err
	}
	out, err := capAnswer(b[:n])
	return copy(b, out), err
}

// streamCap is a TCP connection whose answers, each read whole after
// its two-byte length, are cut (capAnswer).
type streamCap struct {
	net.Conn
	pending bytes.Reader
}

func (c *streamCap) Read(b []byte) (int, error) {
	if c.pending.Len() == 0 {
		var size [2]byte
		if _, err := io.ReadFull(c.Conn, size[:]); err != nil {
			return 0, err
		}
		msg := make([]byte, binary.BigEndian.Uint16(size[:]))
		if _, err := io.ReadFull(c.Conn, msg); err != nil {
			return 0, err
		}
		out, err := capAnswer(msg)
		if err != nil {
			return 0, err
		}
		c.pending.Reset(append(binary.BigEndian.AppendUint16(nil, uint16(len(out))), out...))
	}
	return c.pending.Read(b)
}

var errUnpackable = errors.New("DNS answer could not be cut to its first addresses")

// capAnswer returns msg, or for an answer to an A or AAAA query with more
// than maxAddressRecords records of that type, the answer with the first
// of them and its CNAME chain, all the Go resolver reads of it. A message
// that does not parse is left to the resolver, which refuses it. The
// records are counted without being decoded: an answer over TCP holds
// thousands.
func capAnswer(msg []byte) ([]byte, error) {
	var p dnsmessage.Parser
	if _, err := p.Start(msg); err != nil {
		return msg, nil
	}
	q, err := p.Question()
	if err != nil || (q.Type != dnsmessage.TypeA && q.Type != dnsmessage.TypeAAAA) {
		return msg, nil
	}
	if err := p.SkipAllQuestions(); err != nil {
		return msg, nil
	}
	addrs := 0
	for {
		rh, err := p.AnswerHeader()
		if err == dnsmessage.ErrSectionDone {
			break
		}
		if err != nil {
			return msg, nil
		}
		if rh.Type == q.Type {
			addrs++
		}
		if err := p.SkipAnswer(); err != nil {
			return msg, nil
		}
	}
	if addrs <= maxAddressRecords {
		return msg, nil
	}
	out, err := firstAddresses(msg, q)
	if err != nil {
		return nil, errUnpackable
	}
	return out, nil
}

// firstAddresses rebuilds msg, an answer to q that parses, with its
// CNAME records and its first maxAddressRecords records of q's type.
func firstAddresses(msg []byte, q dnsmessage.Question) ([]byte, error) {
	var p dnsmessage.Parser
	h, err := p.Start(msg)
	if err != nil {
		return nil, err
	}
	if err := p.SkipAllQuestions(); err != nil {
		return nil, err
	}
	b := dnsmessage.NewBuilder(nil, h)
	b.EnableCompression()
	if err := b.StartQuestions(); err != nil {
		return nil, err
	}
	if err := b.Question(q); err != nil {
		return nil, err
	}
	if err := b.StartAnswers(); err != nil {
		return nil, err
	}
	kept := 0
	for {
		rh, err := p.AnswerHeader()
		if err == dnsmessage.ErrSectionDone {
			break
		}
		if err != nil {
			return nil, err
		}
		keep := rh.Type == q.Type && kept < maxAddressRecords
		switch {
		case rh.Type == dnsmessage.TypeCNAME:
			var r dnsmessage.CNAMEResource
			if r, err = p.CNAMEResource(); err == nil {
				err = b.CNAMEResource(rh, r)
			}
		case keep && rh.Type == dnsmessage.TypeA:
			var r dnsmessage.AResource
			if r, err = p.AResource(); err == nil {
				err = b.AResource(rh, r)
			}
		case keep:
			var r dnsmessage.AAAAResource
			if r, err = p.AAAAResource(); err == nil {
				err = b.AAAAResource(rh, r)
			}
		default:
			err = p.SkipAnswer()
		}
		if err != nil {
			return nil, err
		}
		if keep {
			kept++
		}
	}
	return b.Finish()
}
