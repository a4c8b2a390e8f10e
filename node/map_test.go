package node_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/netip"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/mxgrid/mxgrid/internal/nodetest"
	"github.com/mxgrid/mxgrid/internal/testenv"
	"github.com/mxgrid/mxgrid/store"
)

// TestMapLeaderRendersAndFailsOver runs three nodes sharing one store: only
// the cluster's leader renders the map, all three serve it with one ETag,
// and when the leader goes another node renders the next period.
func TestMapLeaderRendersAndFailsOver(t *testing.T) {
	db := filepath.Join(t.TempDir(), "shared.db")
	st, err := store.Open(store.Config{Driver: store.SQLite, DSN: db, Timeout: 5 * time.Second}, "")
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	if err := st.MigrateEvents(context.Background()); err != nil {
		t.Fatal(err)
	}
	addEvents := func(n int, country string) {
		t.Helper()
		evs := make([]store.StoredEvent, n)
		for i := range evs {
			evs[i] = store.StoredEvent{Time: time.Now().UTC(), IP: netip.AddrFrom4([4]byte{203, 0, 113, byte(i)}), Node: "x",
				Domain: "example.org", Verdict: "spam", Action: "reject", Score: 20,
				Located: true, Country: country, CountryName: country, City: "c", Lat: 48, Lon: 2}
		}
		if err := st.InsertEvents(context.Background(), evs); err != nil {
			t.Fatal(err)
		}
	}
	addEvents(5, "FR")

	gossip := []string{fmt.Sprintf("127.0.0.1:%d", testenv.FreePort(t)), fmt.Sprintf("127.0.0.1:%d", testenv.FreePort(t)), fmt.Sprintf("127.0.0.1:%d", testenv.FreePort(t))}
	nodes := make([]*nodetest.Node, 3)
	for i, name := range []string{"node-a", "node-b", "node-c"} {
		cfg := nodetest.Config(t)
		cfg.Node.Name = name
		cfg.Store = store.Config{Driver: store.SQLite, DSN: db, Timeout: 5 * time.Second}
		cfg.Map.Interval = 5 * time.Second
		cfg.Cluster.Bind = gossip[i]
		cfg.Cluster.Join = gossip
		nodes[i] = nodetest.Start(t, cfg, nil)
	}

	var etag string
	eventually(t, 30*time.Second, "all three serve one map of the events", func() bool {
		etag = ""
		for _, n := range nodes {
			e, events := mapState(t, n)
			if events != 5 || (etag != "" && e != etag) {
				return false
			}
			etag = e
		}
		return true
	})
	if got := renders(t, nodes[1]) + renders(t, nodes[2]); got != 0 {
		t.Fatalf("followers rendered %d times; only the leader (node-a) should", got)
	}
	if renders(t, nodes[0]) == 0 {
		t.Fatal("node-a served a map it did not render")
	}

	nodes[0].Stop(t)
	addEvents(7, "DE")
	eventually(t, 40*time.Second, "the next leader renders the next period", func() bool {
		eb, nb := mapState(t, nodes[1])
		ec, nc := mapState(t, nodes[2])
		return nb == 12 && nc == 12 && eb == ec && eb != etag
	})
	if renders(t, nodes[1]) == 0 || renders(t, nodes[2]) != 0 {
		t.Fatalf("after failover node-b rendered %d, node-c %d; want node-b only", renders(t, nodes[1]), renders(t, nodes[2]))
	}
}

// mapState is a node's map ETag and its event count.
func mapState(t *testing.T, n *nodetest.Node) (string, int) {
	t.Helper()
	resp, err := http.Get("http://" + n.HTTPAddr() + "/map.json")
	if err != nil {
		return "", -1
	}
	defer resp.Body.Close()
	var m struct {
		Events int `json:"events"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&m); err != nil {
		return "", -1
	}
	return resp.Header.Get("ETag"), m.Events
}

// renders is how many maps the node generated, from its metrics.
func renders(t *testing.T, n *nodetest.Node) int {
	t.Helper()
	resp, err := http.Get("http://" + n.ManagementAddr() + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	for _, line := range strings.Split(string(body), "\n") {
		if strings.HasPrefix(line, "mxgrid_map_generation_seconds_count") {
			var v int
			fmt.Sscan(strings.Fields(line)[1], &v)
			return v
		}
	}
	return 0
}

func eventually(t *testing.T, within time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(within)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("%s: not within %v", what, within)
		}
		time.Sleep(200 * time.Millisecond)
	}
}
