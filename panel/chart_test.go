package panel

import (
	"encoding/xml"
	"io"
	"strings"
	"testing"
	"time"

	"github.com/mxgrid/mxgrid/admin"
)

// TestChartSVG: one group per bucket, stacked rects whose heights follow
// the counts, well-formed XML with escaped labels, no script.
func TestChartSVG(t *testing.T) {
	start := time.Date(2026, 12, 3, 0, 0, 0, 0, time.UTC)
	b := make([]admin.Bucket, 24)
	for i := range b {
		b[i].Start = start.Add(time.Duration(i) * time.Hour)
	}
	b[3].Counts = admin.Counts{Accepted: 10, Rejected: 10}
	b[7].Counts = admin.Counts{Accepted: 5}
	svg := string(chartSVG(`x"><script>`, b, func(t time.Time) string { return "<" + t.Format("15") + ">" }, 4))
	if strings.Contains(svg, "<script") || strings.Count(svg, `<g class="bar">`) != 24 {
		t.Fatalf("svg: %s", svg)
	}
	d := xml.NewDecoder(strings.NewReader(svg))
	var heights []string
	for {
		tok, err := d.Token()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatalf("not well-formed: %v\n%s", err, svg)
		}
		if se, ok := tok.(xml.StartElement); ok && se.Name.Local == "rect" {
			for _, a := range se.Attr {
				if a.Name.Local == "height" {
					heights = append(heights, a.Value)
				}
			}
		}
	}
	// Hour 3: two layers of half the scale each; hour 7: a quarter.
	if strings.Join(heights, " ") != "78.0 78.0 39.0" {
		t.Fatalf("rect heights %v", heights)
	}
	if !strings.Contains(svg, "&lt;03&gt;: Accepted 10, Rejected 10") || !strings.Contains(svg, "max 20") {
		t.Fatalf("tooltips or scale missing: %s", svg)
	}
}
