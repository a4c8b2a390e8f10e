package main

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"time"
)

// runHealth is `mxgrid health`: the container image's HEALTHCHECK. The
// runtime image has no shell and no curl, so the binary asks its own
// /readyz and exits 0 only on 200 (a degraded node answers 200 too: it
// still takes mail).
func runHealth(ctx context.Context, args []string, stdout io.Writer) error {
	fs := newFlagSet("health")
	url := fs.String("url", "http://127.0.0.1:8025/readyz", "readiness `URL` to ask")
	timeout := fs.Duration("timeout", 3*time.Second, "give up after this long")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() != 0 {
		return fmt.Errorf("%w: mxgrid health [--url URL] [--timeout D]", errUsage)
	}
	ctx, cancel := context.WithTimeout(ctx, *timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, *url, nil)
	if err != nil {
		return fmt.Errorf("health: %w", err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return fmt.Errorf("health: %w", err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	fmt.Fprintf(stdout, "%s %s\n", resp.Status, body)
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("health: %s answered %s", *url, resp.Status)
	}
	return nil
}
