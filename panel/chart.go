package panel

import (
	"fmt"
	"html/template"
	"strings"
	"time"

	"github.com/mxgrid/mxgrid/admin"
)

// Outcome charts: stacked bars drawn on the server as inline SVG (no
// script, no external file), one bar per hour or day. Colours are SVG
// attributes, not styles, so the panel's CSP needs nothing more.

// series is one stacked layer: its legend name, colour and count.
var series = []struct {
	name, colour string
	value        func(admin.Counts) int64
}{
	{"Accepted", "#15803d", func(c admin.Counts) int64 { return c.Accepted }},
	{"Tagged", "#d97706", func(c admin.Counts) int64 { return c.Tagged }},
	{"Rejected", "#b91c1c", func(c admin.Counts) int64 { return c.Rejected }},
	{"Viruses", "#7c3aed", func(c admin.Counts) int64 { return c.Virus }},
	{"Tempfails", "#64748b", func(c admin.Counts) int64 { return c.Tempfail }},
}

const (
	chartW, chartH = 720, 160
	chartPad       = 22 // room for the axis labels below
)

// chartSVG draws buckets; label names a bucket in its tooltip and, every
// labelEvery bars, under the axis.
func chartSVG(id string, buckets []admin.Bucket, label func(time.Time) string, labelEvery int) template.HTML {
	var max int64
	for _, b := range buckets {
		var sum int64
		for _, s := range series {
			sum += s.value(b.Counts)
		}
		if sum > max {
			max = sum
		}
	}
	var sb strings.Builder
	fmt.Fprintf(&sb, `<svg class="chart" id="%s" viewBox="0 0 %d %d" role="img" aria-label="messages per period, by outcome" xmlns="http://www.w3.org/2000/svg">`,
		template.HTMLEscapeString(id), chartW, chartH+chartPad)
	fmt.Fprintf(&sb, `<line x1="0" y1="%d" x2="%d" y2="%d" stroke="#cbd5e1"/>`, chartH, chartW, chartH)
	if n := len(buckets); n > 0 {
		slot := float64(chartW) / float64(n)
		for i, b := range buckets {
			x := float64(i)*slot + slot*0.15
			y := float64(chartH)
			var tip []string
			fmt.Fprintf(&sb, `<g class="bar">`)
			for _, s := range series {
				v := s.value(b.Counts)
				if v > 0 {
					tip = append(tip, fmt.Sprintf("%s %d", s.name, v))
				}
				if v == 0 || max == 0 {
					continue
				}
				h := float64(v) / float64(max) * (chartH - 4)
				y -= h
				fmt.Fprintf(&sb, `<rect x="%.1f" y="%.1f" width="%.1f" height="%.1f" fill="%s"/>`, x, y, slot*0.7, h, s.colour)
			}
			if len(tip) == 0 {
				tip = []string{"no mail"}
			}
			fmt.Fprintf(&sb, `<title>%s: %s</title></g>`, template.HTMLEscapeString(label(b.Start)), template.HTMLEscapeString(strings.Join(tip, ", ")))
			if labelEvery > 0 && i%labelEvery == 0 {
				fmt.Fprintf(&sb, `<text x="%.1f" y="%d" font-size="11" fill="#64748b">%s</text>`, x, chartH+15, template.HTMLEscapeString(label(b.Start)))
			}
		}
	}
	fmt.Fprintf(&sb, `<text x="2" y="12" font-size="11" fill="#64748b">max %d</text></svg>`, max)
	return template.HTML(sb.String())
}

// chartsView is what the templates show: the two SVGs and the legend.
type chartsView struct {
	Hourly, Daily template.HTML
	Legend        []legendItem
}

type legendItem struct{ Name, Colour string }

func newChartsView(c admin.Charts) *chartsView {
	v := &chartsView{
		Hourly: chartSVG("chart-hourly", c.Hourly, func(t time.Time) string { return t.UTC().Format("15:04") }, 4),
		Daily:  chartSVG("chart-daily", c.Daily, func(t time.Time) string { return t.UTC().Format("Jan 2") }, 5),
	}
	for _, s := range series {
		v.Legend = append(v.Legend, legendItem{s.name, s.colour})
	}
	return v
}
