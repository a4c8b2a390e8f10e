package clamav

import (
	"bufio"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"strings"
	"time"
)

// chunkSize is the INSTREAM chunk length. 32 KiB measured fastest here
// (LIBS-NOTES 8); clamd accepts any size up to StreamMaxLength.
const chunkSize = 32 << 10

// maxReply bounds the reply line we read: clamd's are one short line.
const maxReply = 4096

// ErrSizeLimit is clamd refusing a stream longer than its StreamMaxLength.
var ErrSizeLimit = errors.New("clamd: INSTREAM size limit exceeded")

// Client speaks the clamd protocol (clamd(8), "z" commands terminated by
// NUL) over TCP or a unix socket, one connection per command. Safe for
// concurrent use; at most maxConns commands run at once.
type Client struct {
	network, addr string
	slots         chan struct{}
}

// NewClient returns a client for addr in the tcp://host:port or
// unix:///path form.
func NewClient(addr string, maxConns int) (*Client, error) {
	network, a, err := parseAddr(addr)
	if err != nil {
		return nil, err
	}
	return &Client{network: network, addr: a, slots: make(chan struct{}, maxConns)}, nil
}

// Scan streams r to clamd with INSTREAM. It returns the signature name when
// clamd finds one, "" when the stream is clean.
func (c *Client) Scan(ctx context.Context, r io.Reader) (string, error) {
	var virus string
	err := c.do(ctx, "zINSTREAM\x00", func(conn net.Conn) error {
		return writeChunks(conn, r)
	}, func(reply string) error {
		var err error
		virus, err = parseScanReply(reply)
		return err
	})
	return virus, err
}

// Ping checks that clamd answers PONG.
func (c *Client) Ping(ctx context.Context) error {
	return c.do(ctx, "zPING\x00", nil, func(reply string) error {
		if reply != "PONG" {
			return fmt.Errorf("clamd: PING answered %q", reply)
		}
		return nil
	})
}

// do runs one command: take a slot, dial, send cmd and the payload, read
// the NUL-terminated reply. ctx bounds all of it, waiting for a slot too.
func (c *Client) do(ctx context.Context, cmd string, payload func(net.Conn) error, handle func(string) error) error {
	select {
	case c.slots <- struct{}{}:
		defer func() { <-c.slots }()
	case <-ctx.Done():
		return fmt.Errorf("clamd: waiting for a connection slot: %w", ctx.Err())
	}
	var d net.Dialer
	conn, err := d.DialContext(ctx, c.network, c.addr)
	if err != nil {
		return fmt.Errorf("clamd: %w", err)
	}
	defer conn.Close()
	if dl, ok := ctx.Deadline(); ok {
		_ = conn.SetDeadline(dl)
	}
	// Cancellation without a deadline must still unblock reads and writes.
	stop := context.AfterFunc(ctx, func() { _ = conn.SetDeadline(time.Unix(1, 0)) })
	defer stop()

	if _, err := io.WriteString(conn, cmd); err != nil {
		return fmt.Errorf("clamd: send command: %w", ctxErr(ctx, err))
	}
	var writeErr error
	if payload != nil {
		writeErr = payload(conn)
	}
	// Read the reply even after a failed write: over its size limit clamd
	// answers and closes while we are still sending, and the reply says why.
	reply, err := readReply(conn)
	if err != nil {
		if writeErr != nil {
			return fmt.Errorf("clamd: send stream: %w", ctxErr(ctx, writeErr))
		}
		return fmt.Errorf("clamd: read reply: %w", ctxErr(ctx, err))
	}
	return handle(reply)
}

// ctxErr prefers the context's reason over the deadline-induced I/O error
// it caused, so callers can tell a timeout with errors.Is. The connection's
// deadline is the context's, and may fire a moment before the context's own
// timer does: an I/O timeout here is the context's deadline.
func ctxErr(ctx context.Context, err error) error {
	if ctx.Err() != nil {
		return fmt.Errorf("%w (%v)", ctx.Err(), err)
	}
	if errors.Is(err, os.ErrDeadlineExceeded) {
		return fmt.Errorf("%w (%v)", context.DeadlineExceeded, err)
	}
	return err
}

// writeChunks sends r as INSTREAM chunks: a 4-byte big-endian length, the
// bytes, and a zero length to end the stream.
func writeChunks(w io.Writer, r io.Reader) error {
	buf := make([]byte, 4+chunkSize)
	for {
		n, err := io.ReadFull(r, buf[4:])
		if n > 0 {
			binary.BigEndian.PutUint32(buf, uint32(n))
			if _, werr := w.Write(buf[:4+n]); werr != nil {
				return werr
			}
		}
		if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
			break
		}
		if err != nil {
			return fmt.Errorf("read message: %w", err)
		}
	}
	_, err := w.Write([]byte{0, 0, 0, 0})
	return err
}

func readReply(conn net.Conn) (string, error) {
	line, err := bufio.NewReader(io.LimitReader(conn, maxReply)).ReadString(0)
	if err != nil {
		return "", err
	}
	return strings.TrimSpace(strings.TrimSuffix(line, "\x00")), nil
}

// parseScanReply reads "stream: OK", "stream: <name> FOUND" or
// "<reason> ERROR".
func parseScanReply(reply string) (string, error) {
	switch {
	case strings.HasSuffix(reply, " FOUND"):
		name := strings.TrimSuffix(reply, " FOUND")
		if i := strings.Index(name, ": "); i >= 0 {
			name = name[i+2:]
		}
		if name == "" {
			return "", fmt.Errorf("clamd: FOUND without a signature name: %q", reply)
		}
		return name, nil
	case strings.HasSuffix(reply, ": OK") || reply == "OK":
		return "", nil
	case strings.Contains(reply, "size limit exceeded"):
		return "", ErrSizeLimit
	case strings.HasSuffix(reply, " ERROR"):
		return "", fmt.Errorf("clamd: %s", reply)
	}
	return "", fmt.Errorf("clamd: unexpected reply %q", reply)
}
