package main

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"time"

	"github.com/mxgrid/mxgrid/config"
	"github.com/mxgrid/mxgrid/netguard"
)

// runHealth is `mxgrid health`: the container image's HEALTHCHECK. The
// runtime image has no shell and no curl, so the binary asks its own
// /readyz and exits 0 only on 200 (a degraded node answers 200 too: it
// still takes mail). Given the node's --config it asks where that config's
// http.management_listen is, so moving the listener does not leave a
// HEALTHCHECK asking the old port and every node marked unhealthy. Not
// http.listen: anyone can fill the public listener's connections, which
// costs the node no mail, and a check asking there had the node reported
// unhealthy (restarted, taken out of rotation) for it.
func runHealth(ctx context.Context, args []string, stdout io.Writer) error {
	fs := newFlagSet("health")
	url := fs.String("url", "", "readiness `URL` to ask (default: /readyz on the config's http.management_listen)")
	path := fs.String("config", "", "the node's YAML configuration `file` (default: the built-in defaults, http://127.0.0.1:8026)")
	timeout := fs.Duration("timeout", 3*time.Second, "give up after this long")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if fs.NArg() != 0 || (*url != "" && *path != "") {
		return fmt.Errorf("%w: mxgrid health [--config FILE | --url URL] [--timeout D]", errUsage)
	}
	if *timeout <= 0 {
		return fmt.Errorf("%w: --timeout must be positive, got %s", errUsage, *timeout)
	}
	if *url == "" {
		cfg, err := config.Load(*path)
		if err != nil {
			return err
		}
		if *url, err = readyzURL(cfg.HTTP.ManagementListen); err != nil {
			return fmt.Errorf("http.management_listen: %w", err)
		}
	}
	ctx, cancel := context.WithTimeout(ctx, *timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, *url, nil)
	if err != nil {
		return err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	fmt.Fprintf(stdout, "%s %s\n", resp.Status, body)
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("%s answered %s", *url, resp.Status)
	}
	return nil
}

// readyzURL is the /readyz URL of a node listening on listen. A wildcard
// bind (0.0.0.0, ::, no host) is asked on loopback: the health check runs
// beside the node, and a wildcard is no address to connect to.
func readyzURL(listen string) (string, error) {
	t, err := netguard.ParseListen(listen)
	if err != nil {
		return "", err
	}
	if t.Port == 0 {
		return "", fmt.Errorf("%s: port 0 is chosen at start, unknown to a health check", listen)
	}
	host := t.Host
	switch {
	case t.IP.IsValid() && t.IP.IsUnspecified() && t.IP.Is6():
		host = "::1"
	case t.IP.IsValid() && !t.IP.IsUnspecified():
		host = t.IP.String()
	case host == "":
		host = "127.0.0.1"
	}
	return "http://" + net.JoinHostPort(host, strconv.Itoa(int(t.Port))) + "/readyz", nil
}
