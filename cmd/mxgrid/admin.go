package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/url"
	"os"
	"slices"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"
	"unicode"
	"unicode/utf16"
	"unicode/utf8"

	"github.com/mxgrid/mxgrid/fsperm"
	"github.com/mxgrid/mxgrid/internal/apiclient"
)

// The reseller, customer, domain and recipient commands are thin wrappers
// over a node's admin API: they go through HTTP, not the database, so
// they work from anywhere the API is reachable, with a reseller's token
// as well as the operator's, and every change lands in the audit log and
// reaches the cluster exactly as a change made in the panel does.

const defaultAPI = "http://127.0.0.1:8025"

// apiFlags are the flags every API command takes.
type apiFlags struct {
	api, token, tokenFile string
	json                  bool
	timeout               time.Duration
}

func (f *apiFlags) register(fs *flag.FlagSet) {
	api := os.Getenv("MXGRID_API")
	if api == "" {
		api = defaultAPI
	}
	fs.StringVar(&f.api, "api", api, "admin API `URL` of a node (env MXGRID_API)")
	// No default from the environment here: -h would print the secret.
	fs.StringVar(&f.token, "token", "", "bearer `token` (env MXGRID_TOKEN; prefer -token-file, the command line is visible to other users)")
	fs.StringVar(&f.tokenFile, "token-file", "", "read the bearer token from `file`")
	fs.BoolVar(&f.json, "json", false, "print the API's JSON instead of a table")
	fs.DurationVar(&f.timeout, "timeout", 30*time.Second, "give up on each request after this `duration`")
}

func (f *apiFlags) client() (*apiclient.Client, error) {
	token := f.token
	switch {
	case f.token != "" && f.tokenFile != "":
		return nil, fmt.Errorf("%w: give -token or -token-file, not both", errUsage)
	case f.tokenFile != "":
		b, err := fsperm.ReadSecret(f.tokenFile)
		if err != nil {
			return nil, fmt.Errorf("token file: %w", err)
		}
		if token = strings.TrimSpace(string(b)); token == "" {
			return nil, fmt.Errorf("token file %s is empty", f.tokenFile)
		}
	case token == "":
		token = os.Getenv("MXGRID_TOKEN")
	}
	if token == "" {
		return nil, fmt.Errorf("%w: no API token: give -token-file FILE, -token TOKEN or MXGRID_TOKEN", errUsage)
	}
	c, err := apiclient.New(f.api, token, f.timeout, "mxgrid-cli/"+version)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", errUsage, err)
	}
	return c, nil
}

// field is a flag that becomes a member of a create, update or action body.
type field struct {
	flag, key, usage string
	isInt, isBool    bool
	update           bool // also settable by update
}

// filter is a list flag that becomes a query parameter.
type filter struct {
	flag, key, usage string
	isInt            bool
}

// column is one column of the table output: key of the JSON object, and
// what to show when the API leaves the key out (omitempty: false, 0, "").
type column struct{ header, key, absent string }

// idAction is a POST to ID/name; its fields are the flags of its body,
// which is sent only when one of them is given.
type idAction struct {
	name   string
	fields []field
}

// resource describes one top-level object of the API.
type resource struct {
	name, path string
	fields     []field
	filters    []filter
	columns    []column
	// actions are POSTs to ID/action answering the object (domain verify).
	actions []idAction
	// readOnly resources are not created or changed through the CLI (the
	// quarantine: the mail path fills it).
	readOnly bool
}

var (
	resellerResource = resource{
		name: "reseller", path: "/api/v1/resellers",
		fields: []field{
			{flag: "name", key: "name", usage: "reseller `name`", update: true},
			{flag: "max-domains", key: "quota.domains", isInt: true, usage: "operator: at most `n` domains, pending ones included (0: tenants.default_quota)", update: true},
			{flag: "max-recipients", key: "quota.recipients", isInt: true, usage: "operator: at most `n` recipients over all its domains (0: tenants.default_quota)", update: true},
		},
		filters: []filter{{flag: "name", key: "name", usage: "only names containing `text` (any case)"}},
		// A list has no usage (get counts it); a quota left at the
		// default is absent.
		columns: []column{{"ID", "id", "-"}, {"NAME", "name", "-"}, {"SLUG", "slug", "-"},
			{"DOMAINS", "usage.domains.used", "-"}, {"MAX_DOMAINS", "quota.domains", "default"},
			{"RECIPIENTS", "usage.recipients.used", "-"}, {"MAX_RECIPIENTS", "quota.recipients", "default"}},
	}
	customerResource = resource{
		name: "customer", path: "/api/v1/customers",
		fields: []field{
			{flag: "reseller", key: "reseller_id", isInt: true, usage: "reseller `id` (the operator must give it; a reseller's token uses its own)", update: true},
			{flag: "name", key: "name", usage: "customer `name`", update: true},
		},
		filters: []filter{
			{flag: "reseller", key: "reseller_id", isInt: true, usage: "only this reseller's customers (`id`)"},
			{flag: "name", key: "name", usage: "only names containing `text` (any case)"},
		},
		columns: []column{{"ID", "id", "-"}, {"NAME", "name", "-"}, {"RESELLER", "reseller_id", "-"}, {"SUSPENDED", "suspended", "no"}},
	}
	domainResource = resource{
		name: "domain", path: "/api/v1/domains",
		fields: []field{
			{flag: "customer", key: "customer_id", isInt: true, usage: "customer `id`", update: true},
			{flag: "name", key: "name", usage: "domain `name`", update: true},
			{flag: "route", key: "route", usage: "customer's mail server, `host:port`", update: true},
			{flag: "tls", key: "tls", usage: "TLS towards the route, `mode`: none, opportunistic (the API's default) or required", update: true},
		},
		filters: []filter{
			{flag: "customer", key: "customer_id", isInt: true, usage: "only this customer's domains (`id`)"},
			{flag: "reseller", key: "reseller_id", isInt: true, usage: "only this reseller's domains (`id`)"},
			{flag: "name", key: "name", usage: "only names containing `text` (any case)"},
		},
		columns: []column{{"ID", "id", "-"}, {"NAME", "name", "-"}, {"CUSTOMER", "customer_id", "-"}, {"RESELLER", "reseller_id", "-"}, {"ROUTE", "route", "-"}, {"TLS", "tls", "-"}, {"RULES", "routes", "0"},
			{"STATUS", "status", "-"}, {"TOKEN", "verify_token", "-"}},
		// verify checks the DNS proof now; approve (operator) skips it.
		actions: []idAction{{name: "verify"}, {name: "approve"}},
	}
	quarantineResource = resource{
		name: "quarantine", path: "/api/v1/quarantine", readOnly: true,
		filters: []filter{
			{flag: "domain", key: "domain_id", isInt: true, usage: "only this domain's messages (`id`)"},
			{flag: "customer", key: "customer_id", isInt: true, usage: "only this customer's messages (`id`)"},
			{flag: "search", key: "q", usage: "sender, recipient or subject containing `text` (any case)"},
			{flag: "state", key: "state", usage: "`state`: held, releasing, unconfirmed or released"},
		},
		columns: []column{{"ID", "id", "-"}, {"TIME", "time", "-"}, {"STATE", "state", "-"}, {"DOMAIN", "domain", "-"},
			{"SENDER", "sender", "<>"}, {"RECIPIENTS", "recipients", "0"}, {"SCORE", "score", "-"}, {"SUBJECT", "subject", "-"}},
		// release delivers it once to the domain's current route.
		actions: []idAction{{name: "release", fields: []field{{flag: "allow-sender", key: "allow_sender", isBool: true,
			usage: "also put the message's sender on its domain's allow list, once the release was delivered"}}}},
	}
)

func runQuarantine(ctx context.Context, args []string, stdout io.Writer) error {
	return quarantineResource.run(ctx, args, stdout)
}

func runReseller(ctx context.Context, args []string, stdout io.Writer) error {
	return resellerResource.run(ctx, args, stdout)
}

func runCustomer(ctx context.Context, args []string, stdout io.Writer) error {
	return customerResource.run(ctx, args, stdout)
}

func runDomain(ctx context.Context, args []string, stdout io.Writer) error {
	return domainResource.run(ctx, args, stdout)
}

func (r resource) run(ctx context.Context, args []string, stdout io.Writer) error {
	verbs := "list|create|get|update|delete"
	if r.readOnly {
		verbs = "list|get|delete"
	}
	for _, a := range r.actions {
		verbs += "|" + a.name
	}
	usage := fmt.Errorf("%w: mxgrid %s %s [flags] (mxgrid %[2]s ACTION -h for its flags)", errUsage, r.name, verbs)
	if len(args) == 0 {
		return usage
	}
	action, args := args[0], args[1:]
	if r.readOnly && (action == "create" || action == "update") {
		return usage
	}
	act, isAction := r.action(action)
	synopsis := "[flags]"
	if action == "get" || action == "update" || action == "delete" || isAction {
		synopsis = "ID [flags]"
	}
	fs := newActionFlagSet(r.name, action, synopsis)
	var af apiFlags
	af.register(fs)
	var err error
	switch action {
	case "list":
		var limit int
		fs.IntVar(&limit, "limit", 0, "print at most `n` objects (0: all, following every page)")
		query := r.filterFlags(fs)
		if err = parseArgs(fs, args, 0, ""); err == nil {
			err = r.list(ctx, af, query(), limit, stdout)
		}
	case "create":
		quiet := fs.Bool("q", false, "print only the new object's id")
		body := fieldFlags(fs, r.fields, false)
		if err = parseArgs(fs, args, 0, ""); err == nil {
			err = r.write(ctx, af, "POST", r.path, body(), *quiet, stdout)
		}
	case "get":
		var id string
		if id, err = parseID(fs, args); err == nil {
			err = r.write(ctx, af, "GET", r.path+"/"+id, nil, false, stdout)
		}
	case "update":
		body := fieldFlags(fs, r.fields, true)
		var id string
		if id, err = parseID(fs, args); err == nil {
			b := body()
			if len(b) == 0 {
				err = fmt.Errorf("%w: nothing to change: give at least one of the flags (-h lists them)", errUsage)
			} else {
				err = r.write(ctx, af, "PATCH", r.path+"/"+id, b, false, stdout)
			}
		}
	case "delete":
		var id string
		if id, err = parseID(fs, args); err == nil {
			err = r.delete(ctx, af, r.path+"/"+id, r.name+" "+id, stdout)
		}
	case "-h", "-help", "--help", "help":
		return printUsage(usage)
	default:
		if !isAction {
			return usage
		}
		body := fieldFlags(fs, act.fields, false)
		var id string
		if id, err = parseID(fs, args); err == nil {
			b := body()
			if len(b) == 0 {
				b = nil // no flag given: the API's defaults, without a body
			}
			err = r.write(ctx, af, "POST", r.path+"/"+id+"/"+action, b, false, stdout)
		}
	}
	return actionError(action, err)
}

// printUsage answers an action's -h: the usage line on stderr.
func printUsage(usage error) error {
	fmt.Fprintln(os.Stderr, strings.TrimPrefix(usage.Error(), errUsage.Error()+": "))
	return flag.ErrHelp
}

// actionError names the action in front of an API error ("mxgrid domain:
// create: invalid input"); usage errors and -h pass as they are.
func actionError(action string, err error) error {
	if err != nil && !errors.Is(err, flag.ErrHelp) && !errors.Is(err, errUsage) {
		return fmt.Errorf("%s: %w", action, err)
	}
	return err
}

// newActionFlagSet is newFlagSet with a usage line that shows where the
// positional arguments go.
func newActionFlagSet(name, action, synopsis string) *flag.FlagSet {
	fs := newFlagSet(name + " " + action)
	fs.Usage = func() {
		fmt.Fprintf(fs.Output(), "usage: mxgrid %s %s %s\n", name, action, synopsis)
		fs.PrintDefaults()
	}
	return fs
}

// action returns the resource's action called name.
func (r resource) action(name string) (idAction, bool) {
	i := slices.IndexFunc(r.actions, func(a idAction) bool { return a.name == name })
	if i < 0 {
		return idAction{}, false
	}
	return r.actions[i], true
}

// fieldFlags registers the body flags and returns a function building the
// body from the flags actually given: an absent member keeps its value on
// PATCH and takes the API's default on POST.
func fieldFlags(fs *flag.FlagSet, fields []field, update bool) func() map[string]any {
	strs := map[string]*string{}
	ints := map[string]*int64{}
	bools := map[string]*bool{}
	for _, f := range fields {
		switch {
		case update && !f.update:
		case f.isInt:
			ints[f.flag] = fs.Int64(f.flag, 0, f.usage)
		case f.isBool:
			bools[f.flag] = fs.Bool(f.flag, false, f.usage)
		default:
			strs[f.flag] = fs.String(f.flag, "", f.usage)
		}
	}
	return func() map[string]any {
		body := map[string]any{}
		fs.Visit(func(fl *flag.Flag) {
			for _, f := range fields {
				switch {
				case f.flag != fl.Name:
				case strs[f.flag] != nil:
					put(body, f.key, *strs[f.flag])
				case ints[f.flag] != nil:
					put(body, f.key, *ints[f.flag])
				case bools[f.flag] != nil:
					put(body, f.key, *bools[f.flag])
				}
			}
		})
		return body
	}
}

// put sets key in body; a dotted key ("quota.domains") is a member of a
// nested object, which the flags of its other members share.
func put(body map[string]any, key string, v any) {
	obj, member, nested := strings.Cut(key, ".")
	if !nested {
		body[key] = v
		return
	}
	m, _ := body[obj].(map[string]any)
	if m == nil {
		m = map[string]any{}
		body[obj] = m
	}
	put(m, member, v)
}

// lookup is the value of a column's key, dots walking into nested objects.
func lookup(obj map[string]any, key string) (any, bool) {
	for {
		k, rest, nested := strings.Cut(key, ".")
		v, ok := obj[k]
		if !ok || !nested {
			return v, ok
		}
		if obj, ok = v.(map[string]any); !ok {
			return nil, false
		}
		key = rest
	}
}

func (r resource) filterFlags(fs *flag.FlagSet) func() url.Values {
	vals := map[string]*string{}
	for _, f := range r.filters {
		vals[f.key] = fs.String(f.flag, "", f.usage)
	}
	return func() url.Values {
		q := url.Values{}
		for k, v := range vals {
			if *v != "" {
				q.Set(k, *v)
			}
		}
		return q
	}
}

func (r resource) list(ctx context.Context, af apiFlags, q url.Values, limit int, stdout io.Writer) error {
	if limit < 0 {
		return fmt.Errorf("%w: -limit must not be negative", errUsage)
	}
	for _, f := range r.filters {
		if v := q.Get(f.key); f.isInt && v != "" {
			if _, err := strconv.ParseUint(v, 10, 63); err != nil {
				return fmt.Errorf("%w: -%s %q: want an id", errUsage, f.flag, v)
			}
		}
	}
	c, err := af.client()
	if err != nil {
		return err
	}
	items, err := c.List(ctx, r.path, q, limit)
	if err != nil {
		return err
	}
	return printItems(stdout, af.json, r.columns, items)
}

// write sends a request answered by one object and prints it.
func (r resource) write(ctx context.Context, af apiFlags, method, path string, body map[string]any, quiet bool, stdout io.Writer) error {
	c, err := af.client()
	if err != nil {
		return err
	}
	var b any
	if body != nil {
		b = body
	}
	data, err := c.Do(ctx, method, path, nil, b)
	if err != nil {
		return err
	}
	if quiet {
		var obj struct {
			ID int64 `json:"id"`
		}
		if err := json.Unmarshal(data, &obj); err != nil || obj.ID == 0 {
			return fmt.Errorf("answer of %s %s has no id: %.200s", method, path, data)
		}
		_, err := fmt.Fprintln(stdout, obj.ID)
		return err
	}
	if af.json {
		_, err := stdout.Write(append(visibleJSON(bytes.TrimSpace(data)), '\n'))
		return err
	}
	return printItems(stdout, false, r.columns, []json.RawMessage{data})
}

func (r resource) delete(ctx context.Context, af apiFlags, path, what string, stdout io.Writer) error {
	c, err := af.client()
	if err != nil {
		return err
	}
	if _, err := c.Do(ctx, "DELETE", path, nil, nil); err != nil {
		return err
	}
	// 204 has no body: -json prints nothing, the exit status says it all.
	if !af.json {
		fmt.Fprintf(stdout, "deleted %s\n", what)
	}
	return nil
}

// printItems writes items as one JSON array or as a table of columns.
func printItems(w io.Writer, asJSON bool, cols []column, items []json.RawMessage) error {
	if asJSON {
		if items == nil {
			items = []json.RawMessage{}
		}
		b, err := json.Marshal(items)
		if err != nil {
			return fmt.Errorf("encode output: %w", err)
		}
		_, err = w.Write(append(visibleJSON(b), '\n'))
		return err
	}
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	for i, c := range cols {
		if i > 0 {
			fmt.Fprint(tw, "\t")
		}
		fmt.Fprint(tw, c.header)
	}
	fmt.Fprintln(tw)
	for _, item := range items {
		var obj map[string]any
		dec := json.NewDecoder(bytes.NewReader(item))
		dec.UseNumber() // ids print as 12, not 1.2e+01
		if err := dec.Decode(&obj); err != nil {
			return fmt.Errorf("decode answer: %w", err)
		}
		for i, c := range cols {
			if i > 0 {
				fmt.Fprint(tw, "\t")
			}
			v, ok := lookup(obj, c.key)
			if !ok {
				fmt.Fprint(tw, c.absent)
				continue
			}
			c := cell(v)
			if i < len(cols)-1 {
				c = oneField(c)
			}
			fmt.Fprint(tw, c)
		}
		fmt.Fprintln(tw)
	}
	return tw.Flush()
}

// cell renders one value so that every cell is one word-ish token (with
// oneField, but in the last column), and awk '{print $1}' and friends
// keep working on the table.
func cell(v any) string {
	switch v := v.(type) {
	case nil:
		return "-"
	case string:
		if v == "" {
			return "-"
		}
		return visible(v)
	case bool:
		if v {
			return "yes"
		}
		return "no"
	case []any:
		return strconv.Itoa(len(v))
	default:
		return fmt.Sprint(v)
	}
}

// oneField spells out the blanks of a cell that is not its row's last
// (\x20, \u00a0), so it stays one field to awk and strings.Fields: a
// sender's quoted local part may hold blanks, and MAIL FROM:<"x 1 0.10"@...>
// made three fields of a SENDER cell, shifting every column after it (a
// script reading SCORE read 0.10). The last column, a subject people read,
// keeps its blanks: nothing follows it to shift.
func oneField(s string) string {
	if !strings.ContainsFunc(s, unicode.IsSpace) {
		return s
	}
	var b strings.Builder
	for _, r := range s {
		switch {
		case !unicode.IsSpace(r):
			b.WriteRune(r)
		case r < utf8.RuneSelf:
			fmt.Fprintf(&b, `\x%02x`, r)
		default:
			fmt.Fprintf(&b, `\u%04x`, r)
		}
	}
	return b.String()
}

// visible spells out, as Go quotes them, the characters a terminal would
// act on rather than show (C0 and C1 controls, DEL, bidi overrides):
// subjects and senders come from anyone on the internet, and an ESC could
// rewrite the screen, a CR or LF fake a row.
func visible(s string) string {
	var b strings.Builder
	for _, r := range s {
		if unicode.IsGraphic(r) {
			b.WriteRune(r)
			continue
		}
		q := strconv.QuoteRuneToGraphic(r)
		b.WriteString(q[1 : len(q)-1])
	}
	return b.String()
}

// visibleJSON is JSON with the characters visible spells out written as
// \u escapes: -json prints what the API answered, whose strings quote
// senders (a held message's text), and JSON escapes the C0 controls but
// not DEL, the C1 controls (U+009B is CSI to xterm and VTE) or the bidi
// overrides. The values stay the same. Outside its strings JSON holds
// only printable ASCII and the C0 white space it is laid out with, so
// every such character is inside a string.
func visibleJSON(b []byte) []byte {
	var out []byte
	for i := 0; i < len(b); {
		if b[i] < utf8.RuneSelf-1 { // printable ASCII or a C0 control: the bulk of any log line
			if out != nil {
				out = append(out, b[i])
			}
			i++
			continue
		}
		r, n := utf8.DecodeRune(b[i:])
		if r < 0x20 || unicode.IsGraphic(r) || r == utf8.RuneError && n == 1 {
			if out != nil {
				out = append(out, b[i:i+n]...)
			}
			i += n
			continue
		}
		if out == nil {
			out = append(make([]byte, 0, len(b)+64), b[:i]...)
		}
		if r1, r2 := utf16.EncodeRune(r); r1 != utf8.RuneError {
			out = fmt.Appendf(out, `\u%04x\u%04x`, r1, r2)
		} else {
			out = fmt.Appendf(out, `\u%04x`, r)
		}
		i += n
	}
	if out == nil {
		return b
	}
	return out
}

// visibleJSONWriter writes what json.Encoder encodes through visibleJSON
// (one Write a value).
type visibleJSONWriter struct{ w io.Writer }

func (v visibleJSONWriter) Write(p []byte) (int, error) {
	if _, err := v.w.Write(visibleJSON(p)); err != nil {
		return 0, err
	}
	return len(p), nil
}

// visibleLines is visible line by line: the line breaks of a text made of
// lines (an API error's list of fields) stay.
func visibleLines(s string) string {
	lines := strings.Split(s, "\n")
	for i, l := range lines {
		lines[i] = visible(l)
	}
	return strings.Join(lines, "\n")
}

// parseArgs parses flags that may come before or after the positional
// arguments ("domain update 7 -route ..." reads naturally), and checks
// that exactly want positionals were given. Each positional is a path
// segment, so it is escaped there and not here.
func parseArgs(fs *flag.FlagSet, args []string, want int, what string, pos ...*string) error {
	var got []string
	for {
		if err := parseFlags(fs, args); err != nil {
			return err
		}
		rest := fs.Args()
		if len(rest) == 0 {
			break
		}
		// After "--" everything is positional.
		if consumed := len(args) - len(rest); consumed > 0 && args[consumed-1] == "--" {
			got = append(got, rest...)
			break
		}
		got = append(got, rest[0])
		args = rest[1:]
	}
	if len(got) != want {
		if want == 0 {
			return fmt.Errorf("%w: unexpected argument %q", errUsage, got[0])
		}
		return fmt.Errorf("%w: want %s, got %d arguments", errUsage, what, len(got))
	}
	for i, p := range pos {
		*p = got[i]
	}
	return nil
}

// parseID parses the flags and the one positional id.
func parseID(fs *flag.FlagSet, args []string) (string, error) {
	var id string
	if err := parseArgs(fs, args, 1, "one ID", &id); err != nil {
		return "", err
	}
	if n, err := strconv.ParseInt(id, 10, 64); err != nil || n <= 0 {
		return "", fmt.Errorf("%w: %q is not an id (a positive number; list shows them)", errUsage, id)
	}
	return id, nil
}
