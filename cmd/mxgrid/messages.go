package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/url"
)

// messagesColumns is the table of `mxgrid messages search`.
var messagesColumns = []column{{"ID", "id", "-"}, {"TIME", "time", "-"}, {"STATUS", "status", "-"}, {"CODE", "reply_code", "-"},
	{"REASON", "defer_reason", "-"}, {"SENDER", "sender", "<>"}, {"RECIPIENT", "recipient", "-"}, {"QUEUE", "queue_id", "-"}, {"SCORE", "score", "-"}}

// messageFilters maps the command's flags to tracking's query keys.
var messageFilters = []filter{
	{flag: "recipient", key: "recipient", usage: "recipient `address` (any case)"},
	{flag: "sender", key: "sender", usage: "envelope sender `address` (any case)"},
	{flag: "domain", key: "domain_id", usage: "domain `id`"},
	{flag: "customer", key: "customer_id", usage: "customer `id`"},
	{flag: "queue-id", key: "queue_id", usage: "our queue `id`"},
	{flag: "message-id", key: "message_id", usage: "Message-ID `header` with its angle brackets"},
	{flag: "ref", key: "ref", usage: "the `reference` quoted in a refusal"},
	{flag: "status", key: "status", usage: "`status`: delivered, refused, deferred or quarantined"},
	{flag: "since", key: "since", usage: "from this `time` (RFC 3339) or this long ago (24h)"},
	{flag: "until", key: "until", usage: "before this `time` (RFC 3339) or this long ago"},
}

// runMessages searches message tracking through a node's admin API.
func runMessages(ctx context.Context, args []string, stdout io.Writer) error {
	usage := fmt.Errorf("%w: mxgrid messages search [flags] | mxgrid messages show ID (mxgrid messages ACTION -h for its flags)", errUsage)
	if len(args) == 0 {
		return usage
	}
	action, args := args[0], args[1:]
	var af apiFlags
	var err error
	switch action {
	case "search":
		fs := newActionFlagSet("messages", action, "[flags]")
		af.register(fs)
		limit := fs.Int("limit", 50, "print at most `n` records, newest first (0: all, following every page)")
		query := resource{filters: messageFilters}.filterFlags(fs)
		if err = parseArgs(fs, args, 0, ""); err == nil {
			err = searchMessages(ctx, af, query(), *limit, stdout)
		}
	case "show":
		fs := newActionFlagSet("messages", action, "ID [flags]")
		af.register(fs)
		var id string
		if id, err = parseID(fs, args); err == nil {
			err = resource{path: "/api/v1/messages", columns: messagesColumns}.write(ctx, af, "GET", "/api/v1/messages/"+id, nil, false, stdout)
		}
	case "-h", "-help", "--help", "help":
		return printUsage(usage)
	default:
		return usage
	}
	return actionError(action, err)
}

// searchMessages follows the API's cursors until limit records (or all).
func searchMessages(ctx context.Context, af apiFlags, q url.Values, limit int, stdout io.Writer) error {
	if limit < 0 {
		return fmt.Errorf("%w: -limit must not be negative", errUsage)
	}
	c, err := af.client()
	if err != nil {
		return err
	}
	var items []json.RawMessage
	for {
		if limit > 0 {
			q.Set("limit", fmt.Sprint(min(limit-len(items), 500)))
		}
		var pg struct {
			Items      []json.RawMessage `json:"items"`
			NextCursor string            `json:"next_cursor"`
		}
		if err := c.Get(ctx, "/api/v1/messages", q, &pg); err != nil {
			return err
		}
		items = append(items, pg.Items...)
		if pg.NextCursor == "" || limit > 0 && len(items) >= limit {
			break
		}
		q.Set("cursor", pg.NextCursor)
	}
	return printItems(stdout, af.json, messagesColumns, items)
}
