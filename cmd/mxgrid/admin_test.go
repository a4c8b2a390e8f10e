package main

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/mxgrid/mxgrid/internal/apiclient"
	"github.com/mxgrid/mxgrid/internal/nodetest"
)

const adminCLIToken = "cli-test-operator-token-0123456789abcdef"

// operatorTokenFile writes adminCLIToken to a file for admin.operator_token_file.
func operatorTokenFile(t *testing.T) string {
	t.Helper()
	tokFile := filepath.Join(t.TempDir(), "operator.token")
	if err := os.WriteFile(tokFile, []byte(adminCLIToken+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	return tokFile
}

// postID POSTs body to path as c and returns the created object's id.
func postID(t *testing.T, c *apiclient.Client, path string, body any) int64 {
	t.Helper()
	data, err := c.Do(context.Background(), "POST", path, nil, body)
	if err != nil {
		t.Fatalf("POST %s: %v", path, err)
	}
	var obj struct {
		ID int64 `json:"id"`
	}
	if err := json.Unmarshal(data, &obj); err != nil {
		t.Fatal(err)
	}
	return obj.ID
}

// TestAdminCommandsProvisionThroughTheAPI runs the real binary's reseller,
// customer, domain and recipient commands against a node in this process:
// a reseller, its customer and domains are created, listed, changed and
// deleted over HTTP, and a refused change, a bad token and a missing
// object each exit non-zero with the API's reasons on stderr.
func TestAdminCommandsProvisionThroughTheAPI(t *testing.T) {
	tokFile := operatorTokenFile(t)
	cfg := nodetest.Config(t)
	cfg.Admin.OperatorTokenFile = tokFile
	n := nodetest.Start(t, cfg, nil)
	api := "http://" + n.HTTPAddr()

	// mx runs the binary with the API address from the environment, as a
	// provisioning script would set it once, plus env.
	mx := func(env []string, args ...string) (stdout, stderr string, code int) {
		t.Helper()
		cmd := exec.Command(binary, args...)
		cmd.Env = append(os.Environ(), "MXGRID_API="+api, "MXGRID_TOKEN=")
		cmd.Env = append(cmd.Env, env...)
		var o, e bytes.Buffer
		cmd.Stdout, cmd.Stderr = &o, &e
		err := cmd.Run()
		if ee, ok := err.(*exec.ExitError); ok {
			code = ee.ExitCode()
		} else if err != nil {
			t.Fatalf("run %v: %v", args, err)
		}
		return o.String(), e.String(), code
	}
	// ok runs a command that must succeed, authenticated by the token file.
	ok := func(args ...string) string {
		t.Helper()
		out, errOut, code := mx(nil, append(args, "-token-file", tokFile)...)
		if code != 0 {
			t.Fatalf("mxgrid %s: exit %d\n%s", strings.Join(args, " "), code, errOut)
		}
		return out
	}
	// rows returns the table's rows below the header, split in cells.
	rows := func(out string, header ...string) [][]string {
		t.Helper()
		lines := strings.Split(strings.TrimRight(out, "\n"), "\n")
		if got := strings.Fields(lines[0]); strings.Join(got, " ") != strings.Join(header, " ") {
			t.Fatalf("header = %q, want %q", lines[0], header)
		}
		var r [][]string
		for _, l := range lines[1:] {
			r = append(r, strings.Fields(l))
		}
		return r
	}
	domainHeader := []string{"ID", "NAME", "CUSTOMER", "RESELLER", "ROUTE", "TLS", "RULES", "STATUS", "TOKEN"}

	reseller := strings.TrimSpace(ok("reseller", "create", "-name", "Acme IT", "-q"))
	if !regexp.MustCompile(`^[1-9][0-9]*$`).MatchString(reseller) {
		t.Fatalf("reseller create -q printed %q, want an id", reseller)
	}
	// The token also comes from the environment, and flags may follow the
	// action in the double-dash spelling.
	out, errOut, code := mx([]string{"MXGRID_TOKEN=" + adminCLIToken}, "customer", "create", "--reseller", reseller, "--name", "Bakery Ltd", "--json")
	var cust struct {
		ID         int64  `json:"id"`
		ResellerID int64  `json:"reseller_id"`
		Name       string `json:"name"`
	}
	if code != 0 || json.Unmarshal([]byte(out), &cust) != nil || cust.ID == 0 || cust.Name != "Bakery Ltd" {
		t.Fatalf("customer create --json: exit %d, %q, %s", code, out, errOut)
	}
	if r := strings.TrimSpace(reseller); r != jsonNumber(cust.ResellerID) {
		t.Fatalf("customer's reseller_id = %d, want %s", cust.ResellerID, r)
	}
	c := jsonNumber(cust.ID)

	created := rows(ok("domain", "create", "-customer", c, "-name", "bakery.example", "-route", "mail.bakery.example:25"), domainHeader...)
	// The API's default TLS mode shows up, and the reseller is filled in.
	if len(created) != 1 || created[0][1] != "bakery.example" || created[0][2] != c || created[0][3] != reseller ||
		created[0][4] != "mail.bakery.example:25" || created[0][5] != "opportunistic" || created[0][6] != "0" {
		t.Fatalf("domain create printed %q", created)
	}
	d := created[0][0]
	// The operator's domains are active at once; verify and approve
	// answer the domain with its status.
	for _, action := range []string{"verify", "approve"} {
		if got := rows(ok("domain", action, d), domainHeader...); len(got) != 1 || got[0][7] != "active" {
			t.Fatalf("domain %s printed %q, want active", action, got)
		}
	}
	ok("domain", "create", "-customer", c, "-name", "cakes.example", "-route", "mail.bakery.example:25", "-tls", "none")
	ok("domain", "create", "-customer", c, "-name", "other.test", "-route", "127.0.0.1:2525")

	listed := rows(ok("domain", "list", "-customer", c), domainHeader...)
	if len(listed) != 3 || listed[0][1] != "bakery.example" || listed[1][1] != "cakes.example" || listed[2][1] != "other.test" {
		t.Fatalf("domain list = %q, want the three domains in id order", listed)
	}
	if got := rows(ok("domain", "list", "-name", "EXAMPLE"), domainHeader...); len(got) != 2 {
		t.Fatalf("domain list -name EXAMPLE = %q, want the two .example domains", got)
	}
	var page []map[string]any
	if err := json.Unmarshal([]byte(ok("domain", "list", "-limit", "2", "-json")), &page); err != nil || len(page) != 2 {
		t.Fatalf("domain list -limit 2 -json: %v, %d items", err, len(page))
	}

	// Flags after the id; only the given fields change.
	updated := rows(ok("domain", "update", d, "-tls", "required", "-route", "mx2.bakery.example:2525"), domainHeader...)
	if updated[0][1] != "bakery.example" || updated[0][4] != "mx2.bakery.example:2525" || updated[0][5] != "required" {
		t.Fatalf("domain update printed %q", updated)
	}
	var got struct{ Name, Route, TLS string }
	if err := json.Unmarshal([]byte(ok("domain", "get", d, "-json")), &got); err != nil ||
		got.Name != "bakery.example" || got.Route != "mx2.bakery.example:2525" || got.TLS != "required" {
		t.Fatalf("domain get -json = %+v, %v", got, err)
	}

	// A refused create: the API's message, then one line per field.
	_, errOut, code = mx(nil, "domain", "create", "-token-file", tokFile, "-customer", c, "-name", "bakery.example", "-route", "no-port", "-tls", "sometimes")
	lines := strings.Split(strings.TrimSpace(errOut), "\n")
	if code != 1 || lines[0] != "mxgrid domain: create: invalid input (HTTP 400)" || len(lines) != 3 ||
		!strings.HasPrefix(lines[1], "  route: ") || !strings.HasPrefix(lines[2], "  tls: ") {
		t.Fatalf("invalid domain: exit %d, stderr:\n%s", code, errOut)
	}

	// A wrong token is refused by the API, with the same exit status.
	out, errOut, code = mx(nil, "reseller", "list", "-token", "not-the-operator-token-at-all-0123456789")
	if code != 1 || out != "" || !strings.Contains(errOut, "(HTTP 401)") || strings.Count(errOut, "\n") != 1 {
		t.Fatalf("bad token: exit %d, stdout %q, stderr %q", code, out, errOut)
	}
	// Mistakes the CLI sees itself are usage errors, status 2, no request.
	for _, args := range [][]string{
		{"domain", "update", d},
		{"domain", "get", "bakery.example"},
		{"domain", "list", "-customer", "x"},
		{"domain", "list", "-colour", "blue"},
		{"domain", "frobnicate"},
	} {
		if _, errOut, code := mx(nil, append(args, "-token-file", tokFile)...); code != 2 {
			t.Errorf("mxgrid %v: exit %d, want 2\n%s", args, code, errOut)
		}
	}
	if _, errOut, code := mx(nil, "reseller", "list"); code != 2 || !strings.Contains(errOut, "no API token") {
		t.Errorf("no token: exit %d, %q", code, errOut)
	}

	// Recipients of the domain, one by one and from a file.
	ok("recipient", "add", "-domain", d, "alice")
	list := filepath.Join(t.TempDir(), "recipients.txt")
	os.WriteFile(list, []byte("# staff\nbob\n\ncarol@bakery.example\nalice\n"), 0o600)
	if out := ok("recipient", "import", "-domain", d, list); out != "added 2 of 3 recipients\n" {
		t.Fatalf("recipient import printed %q", out)
	}
	rcpts := rows(ok("recipient", "list", "-domain", d), "ID", "DOMAIN", "LOCAL", "CREATED")
	var locals []string
	for _, r := range rcpts {
		locals = append(locals, r[2])
	}
	if strings.Join(locals, " ") != "alice bob carol" {
		t.Fatalf("recipients = %q", locals)
	}
	if out := ok("recipient", "delete", "-domain", d, "bob"); out != "deleted recipient bob\n" {
		t.Fatalf("recipient delete printed %q", out)
	}
	// Local parts "." and ".." are path segments a URL resolves away:
	// deleting recipient ".." sent DELETE .../recipients/.., which the
	// node redirected, method and all, to its domain.
	for _, dots := range []string{"..", "."} {
		ok("recipient", "add", "-domain", d, dots)
		if got := rows(ok("recipient", "get", "-domain", d, dots), "ID", "DOMAIN", "LOCAL", "CREATED"); got[0][2] != dots {
			t.Fatalf("recipient get %s printed %q", dots, got)
		}
		if out := ok("recipient", "delete", "-domain", d, dots); out != "deleted recipient "+dots+"\n" {
			t.Fatalf("recipient delete %s printed %q", dots, out)
		}
	}
	ok("domain", "get", d)

	// The operator caps the reseller's domains at the three it holds: the
	// next is refused with the quota and the usage, which get counts.
	resellerHeader := []string{"ID", "NAME", "SLUG", "DOMAINS", "MAX_DOMAINS", "RECIPIENTS", "MAX_RECIPIENTS"}
	// quotaCells are a reseller row's last four cells (its name has spaces).
	quotaCells := func(row []string) string { return strings.Join(row[len(row)-4:], " ") }
	if got := rows(ok("reseller", "update", reseller, "-max-domains", "3"), resellerHeader...); quotaCells(got[0]) != "- 3 - default" {
		t.Fatalf("reseller update -max-domains printed %q", got)
	}
	_, errOut, code = mx(nil, "domain", "create", "-token-file", tokFile, "-customer", c, "-name", "more.example", "-route", "127.0.0.1:2525")
	if code != 1 || !strings.Contains(errOut, "quota exceeded for domains: 3 of 3 in use") || !strings.Contains(errOut, "(HTTP 403)") {
		t.Fatalf("domain past the quota: exit %d, stderr %q", code, errOut)
	}
	if got := rows(ok("reseller", "get", reseller), resellerHeader...); quotaCells(got[0]) != "3 3 2 default" {
		t.Fatalf("reseller get printed %q, want its usage and quota", got)
	}

	// Deleting, bottom up; a deleted object is then not found.
	if out := ok("domain", "delete", d); out != "deleted domain "+d+"\n" {
		t.Fatalf("domain delete printed %q", out)
	}
	_, errOut, code = mx(nil, "domain", "get", d, "-token-file", tokFile)
	if code != 1 || errOut != "mxgrid domain: get: not found (HTTP 404)\n" {
		t.Fatalf("get deleted domain: exit %d, %q", code, errOut)
	}
	if got := rows(ok("domain", "list"), domainHeader...); len(got) != 2 {
		t.Fatalf("after delete, domain list = %q", got)
	}
	if got := rows(ok("reseller", "list"), resellerHeader...); len(got) != 1 || got[0][0] != reseller {
		t.Fatalf("reseller list = %q", got)
	}
	if got := rows(ok("customer", "update", c, "-name", "Bakery"), "ID", "NAME", "RESELLER", "SUSPENDED"); got[0][1] != "Bakery" || got[0][3] != "no" {
		t.Fatalf("customer update printed %q", got)
	}
}

func jsonNumber(n int64) string {
	b, _ := json.Marshal(n)
	return string(b)
}
