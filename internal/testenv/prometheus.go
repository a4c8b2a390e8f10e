package testenv

import (
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"testing"
	"time"
)

// EnvPrometheus is the prometheus server binary (Debian's package puts it in
// /usr/bin/prometheus), exported by scripts/test.sh.
const EnvPrometheus = "MXGRID_TEST_PROMETHEUS"

// prometheusStartTimeout bounds start-up until /-/ready answers 200; an
// empty TSDB is ready in about a second, the margin covers a loaded machine.
const prometheusStartTimeout = 30 * time.Second

// Prometheus returns the path of the prometheus server binary.
func Prometheus(t testing.TB) string {
	t.Helper()
	return executable(t, EnvPrometheus, "prometheus")
}

// StartPrometheus runs a private Prometheus on a free loopback port with
// config (prometheus.yml text) and a throwaway TSDB, waits until it is
// ready, and returns its base URL ("http://127.0.0.1:PORT"). It is stopped
// at the end of the test. Skips (fails in CI) without the binary.
func StartPrometheus(t testing.TB, config string) string {
	t.Helper()
	bin := Prometheus(t)
	if bin == "" {
		return ""
	}
	dir := t.TempDir()
	conf := filepath.Join(dir, "prometheus.yml")
	if err := os.WriteFile(conf, []byte(config), 0o644); err != nil {
		t.Fatalf("StartPrometheus: %v", err)
	}
	addr, _ := startRetrying(t, func(addr string) (func(), error) {
		d := startDaemon(t, "prometheus", filepath.Join(dir, "prometheus.log"), bin,
			"--config.file="+conf,
			"--storage.tsdb.path="+filepath.Join(dir, "data"),
			"--web.listen-address="+addr,
			"--log.level=warn")
		client := &http.Client{Timeout: 2 * time.Second}
		err := d.waitReady(prometheusStartTimeout, func() error {
			resp, err := client.Get("http://" + addr + "/-/ready")
			if err != nil {
				return err
			}
			resp.Body.Close()
			if resp.StatusCode != http.StatusOK {
				return fmt.Errorf("/-/ready: %s", resp.Status)
			}
			return nil
		})
		return d.stop, err
	})
	return "http://" + addr
}
