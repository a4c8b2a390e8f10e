package smtpd

import (
	"testing"
	"time"
)

func TestRateOverTheLastMinute(t *testing.T) {
	var r rate
	t0 := time.Unix(1_800_000_000, 0)
	for s := 0; s < 30; s++ {
		for range 4 {
			r.add(t0.Add(time.Duration(s) * time.Second))
		}
	}
	tests := []struct {
		at   time.Duration
		want float64
	}{
		{29 * time.Second, 120.0 / 60},
		{59 * time.Second, 120.0 / 60},
		{75 * time.Second, 56.0 / 60}, // seconds 16..29 remain
		{3 * time.Minute, 0},
	}
	for _, tt := range tests {
		if got := r.perSecond(t0.Add(tt.at)); got != tt.want {
			t.Errorf("at +%v: %v/s, want %v/s", tt.at, got, tt.want)
		}
	}
	// A bucket reused a minute later starts from zero.
	r.add(t0.Add(60 * time.Second))
	if got := r.perSecond(t0.Add(60 * time.Second)); got != (116.0+1)/60 {
		t.Errorf("after reuse: %v/s, want %v/s", got, (116.0+1)/60)
	}
}
