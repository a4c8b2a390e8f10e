package testenv

import (
	"bufio"
	"fmt"
	"net/http"
	"strconv"
	"strings"
)

// MetricSum fetches a Prometheus text page and adds up the samples whose
// line starts with prefix: a metric's name and its opening brace for all
// its series, or one series and the space after it. found reports whether
// any line matched, so that a metric missing from the page is told apart
// from one at zero.
func MetricSum(c *http.Client, url, prefix string) (sum float64, found bool, err error) {
	resp, err := c.Get(url)
	if err != nil {
		return 0, false, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return 0, false, fmt.Errorf("GET %s: %s", url, resp.Status)
	}
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		line := sc.Text()
		if !strings.HasPrefix(line, prefix) {
			continue
		}
		v, err := strconv.ParseFloat(line[strings.LastIndexByte(line, ' ')+1:], 64)
		if err != nil {
			return 0, false, fmt.Errorf("%s: %q: %w", url, line, err)
		}
		sum += v
		found = true
	}
	return sum, found, sc.Err()
}
