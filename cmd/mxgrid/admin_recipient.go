package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/url"
	"os"
	"strconv"
	"strings"
)

// Recipients live under their domain (/api/v1/domains/{id}/recipients)
// and are named by local part, so they do not fit the id-based resource.
var recipientColumns = []column{{"ID", "id", "-"}, {"DOMAIN", "domain_id", "-"}, {"LOCAL", "local", "-"}, {"CREATED", "created", "-"}}

func runRecipient(ctx context.Context, args []string, stdout io.Writer) error {
	usage := fmt.Errorf("%w: mxgrid recipient list|add|get|delete|import -domain ID [flags] (mxgrid recipient ACTION -h for its flags)", errUsage)
	if len(args) == 0 {
		return usage
	}
	action, args := args[0], args[1:]
	synopsis := map[string]string{"list": "-domain ID [flags]", "import": "-domain ID [-replace] [flags] FILE|-"}[action]
	if synopsis == "" {
		synopsis = "-domain ID [flags] LOCAL"
	}
	fs := newActionFlagSet("recipient", action, synopsis)
	var af apiFlags
	af.register(fs)
	domain := fs.Int64("domain", 0, "the domain's `id` (mxgrid domain list shows it)")
	base := func() (string, error) {
		if *domain <= 0 {
			return "", fmt.Errorf("%w: -domain ID is required", errUsage)
		}
		return "/api/v1/domains/" + strconv.FormatInt(*domain, 10) + "/recipients", nil
	}
	var err error
	switch action {
	case "list":
		limit := fs.Int("limit", 0, "print at most `n` recipients (0: all, following every page)")
		if err = parseArgs(fs, args, 0, ""); err == nil {
			err = recipientList(ctx, af, base, *limit, stdout)
		}
	case "add", "get", "delete":
		var local string
		if err = parseArgs(fs, args, 1, "one LOCAL part (or address at the domain)", &local); err == nil {
			err = recipientOne(ctx, af, base, action, local, stdout)
		}
	case "import":
		replace := fs.Bool("replace", false, "make the list exactly the file's addresses (an empty file accepts any local part again)")
		var file string
		if err = parseArgs(fs, args, 1, "one FILE (- for standard input)", &file); err == nil {
			err = recipientImport(ctx, af, base, file, *replace, stdout)
		}
	case "-h", "-help", "--help", "help":
		return printUsage(usage)
	default:
		return usage
	}
	return actionError(action, err)
}

func recipientList(ctx context.Context, af apiFlags, base func() (string, error), limit int, stdout io.Writer) error {
	path, err := base()
	if err != nil {
		return err
	}
	if limit < 0 {
		return fmt.Errorf("%w: -limit must not be negative", errUsage)
	}
	c, err := af.client()
	if err != nil {
		return err
	}
	items, err := c.List(ctx, path, nil, limit)
	if err != nil {
		return err
	}
	return printItems(stdout, af.json, recipientColumns, items)
}

func recipientOne(ctx context.Context, af apiFlags, base func() (string, error), action, local string, stdout io.Writer) error {
	path, err := base()
	if err != nil {
		return err
	}
	r := resource{name: "recipient", columns: recipientColumns}
	switch action {
	case "add":
		return r.write(ctx, af, "POST", path, map[string]any{"local": local}, false, stdout)
	case "get":
		return r.write(ctx, af, "GET", path+"/"+localSegment(local), nil, false, stdout)
	default:
		return r.delete(ctx, af, path+"/"+localSegment(local), "recipient "+local, stdout)
	}
}

// localSegment is local as one path segment. url.PathEscape leaves dots
// alone, and a segment "." or ".." is resolved away on the way: recipient
// ".." sent as is named its domain (the node's mux redirected DELETE
// .../recipients/.. to DELETE /api/v1/domains/ID, and the domain was
// deleted; it answers 404 now). Escaped, the dots name the recipient.
func localSegment(local string) string {
	if local == "." || local == ".." {
		return strings.Repeat("%2E", len(local))
	}
	return url.PathEscape(local)
}

// recipientImport reads one address or local part per line; blank lines
// and lines starting with # are skipped so a commented list can be kept
// in version control as is.
func recipientImport(ctx context.Context, af apiFlags, base func() (string, error), file string, replace bool, stdout io.Writer) error {
	path, err := base()
	if err != nil {
		return err
	}
	c, err := af.client()
	if err != nil {
		return err
	}
	in := os.Stdin
	if file != "-" {
		if in, err = os.Open(file); err != nil {
			return err
		}
		defer in.Close()
	}
	recipients := []string{}
	sc := bufio.NewScanner(in)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if line != "" && !strings.HasPrefix(line, "#") {
			recipients = append(recipients, line)
		}
	}
	if err := sc.Err(); err != nil {
		return fmt.Errorf("read %s: %w", file, err)
	}
	data, err := c.Do(ctx, "POST", path+"/import", nil, map[string]any{"recipients": recipients, "replace": replace})
	if err != nil {
		return err
	}
	if af.json {
		_, err := fmt.Fprintf(stdout, "%s\n", visibleJSON(bytes.TrimSpace(data)))
		return err
	}
	var res struct {
		Added int `json:"added"`
	}
	if err := json.Unmarshal(data, &res); err != nil {
		return fmt.Errorf("decode answer: %w", err)
	}
	fmt.Fprintf(stdout, "added %d of %d recipients\n", res.Added, len(recipients))
	return nil
}
