package metrics

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
)

// Samples maps a series as Prometheus prints it (`name{label="v",...}` or `name`) to its value.
type Samples map[string]float64

// Get returns the value of name with the labels given as alternating key/value pairs, in the
// order the exposition prints them (alphabetical).
func (s Samples) Get(name string, labelPairs ...string) (float64, bool) {
	key := name
	if len(labelPairs) > 0 {
		parts := make([]string, 0, len(labelPairs)/2)
		for i := 0; i+1 < len(labelPairs); i += 2 {
			parts = append(parts, fmt.Sprintf("%s=%q", labelPairs[i], labelPairs[i+1]))
		}
		key += "{" + strings.Join(parts, ",") + "}"
	}
	v, ok := s[key]
	return v, ok
}

// ParseText reads the Prometheus text exposition format, enough for tests and e2e checks:
// comments are skipped, timestamps are not expected.
func ParseText(r io.Reader) (Samples, error) {
	out := make(Samples)
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 0, 64*1024), 1024*1024)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		i := strings.LastIndexByte(line, ' ')
		if i < 0 {
			return nil, fmt.Errorf("metrics: malformed sample line %q", line)
		}
		v, err := strconv.ParseFloat(line[i+1:], 64)
		if err != nil {
			return nil, fmt.Errorf("metrics: malformed value in %q: %w", line, err)
		}
		out[line[:i]] = v
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("failed to read metrics: %w", err)
	}
	return out, nil
}

// Scrape fetches url (a /metrics endpoint) and parses it; e2e tests use it to assert that
// counters moved after a bridged message.
func Scrape(ctx context.Context, url string) (Samples, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return nil, fmt.Errorf("failed to build scrape request: %w", err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, fmt.Errorf("failed to scrape %s: %w", url, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("failed to scrape %s: HTTP %d", url, resp.StatusCode)
	}
	return ParseText(resp.Body)
}
