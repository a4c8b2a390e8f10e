package config_test

import (
	"strings"
	"testing"

	"github.com/mxgrid/mxgrid/config"
)

// TestSplitDomainConfigErrors: a bad rule stops the node's config with the
// full key.
func TestSplitDomainConfigErrors(t *testing.T) {
	for _, tc := range []struct{ yaml, want string }{
		{"domains:\n  - name: split.example\n    route: a.test:25\n    routes:\n      - recipients: [bob]\n        route: b.test:25\n      - recipients: [carol]\n        route: mail.example\n",
			"domains[0].routes[1].route: "},
		{"domains:\n  - name: split.example\n    route: a.test:25\n    routes:\n      - recipients: [bob, \"*\"]\n        route: b.test:25\n",
			"domains[0].routes[0].recipients[1]: "},
		{"domains:\n  - name: split.example\n    route: a.test:25\n    routes:\n      - recipients: [bob]\n        route: b.test:25\n        tsl: none\n",
			`unknown key "domains[0].routes[0].tsl"`},
	} {
		cfg := config.Default()
		err := config.Parse([]byte(tc.yaml), &cfg)
		if err == nil {
			err = cfg.Validate()
		}
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("config error %v, want it to contain %q", err, tc.want)
		}
	}
}
