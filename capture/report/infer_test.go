package report

import (
	"math"
	"math/rand/v2"
	"strings"
	"testing"
	"time"

	"github.com/wstap/wstap/capture"
)

// TestInferIdle: 50 upstream drops after 2 s ±5% of silence, plus outliers,
// must name an idle timeout of 2 s ±10% (issue 4, "Must show").
func TestInferIdle(t *testing.T) {
	rng := rand.New(rand.NewPCG(4, 6))
	t0 := time.Date(2026, 11, 28, 10, 0, 0, 0, time.UTC)
	var recs []capture.SessionRecord
	for i := range 50 {
		silence := 2000 * (0.95 + 0.1*rng.Float64())
		dur := 3000 + 20000*rng.Float64() // ages spread: no lifetime cluster
		recs = append(recs, synthRecord(i, t0, dur, capture.VerdictAbnormalUp, 10, silence))
	}
	for i, silence := range []float64{1200, 9000, 15000, 45000} { // outliers
		recs = append(recs, synthRecord(100+i, t0, 60000, capture.VerdictAbnormalUp, 10, silence))
	}
	for i := range 20 { // clean sessions do not count
		recs = append(recs, synthRecord(200+i, t0, 5000, capture.VerdictClean, 10, 4000))
	}
	inf := InferIdleDrops(recs)
	if len(inf) != 1 || inf[0].Kind != InferIdleTimeout {
		t.Fatalf("inferences = %+v, want one idle-timeout", inf)
	}
	got := inf[0]
	if math.Abs(got.EstimateMS-2000) > 200 {
		t.Errorf("estimate = %.0f ms, want 2000 ±10%%", got.EstimateMS)
	}
	if got.Count != 50 || got.Of != 54 {
		t.Errorf("count = %d of %d, want 50 of 54", got.Count, got.Of)
	}
	if !strings.HasPrefix(got.Text, "50 of 54 sessions dropped by the upstream had been silent 1.9–2.1 s: an idle timeout near 2.0 s") {
		t.Errorf("text = %q", got.Text)
	}
}

// TestInferMixed: idle drops beside as many drops made at once by a session
// cap (the demo's story) still name the idle timeout, and say what was left out.
func TestInferMixed(t *testing.T) {
	var recs []capture.SessionRecord
	for i := range 40 {
		recs = append(recs, synthRecord(i, testT0, 5000, capture.VerdictAbnormalUp, 10, 5000+float64(i)))
		recs = append(recs, synthRecord(100+i, testT0, 20, capture.VerdictAbnormalUp, 151, 20))
	}
	for i := range 5 {
		recs = append(recs, synthRecord(200+i, testT0, 9000, capture.VerdictAbnormalUp, 10, 2000))
	}
	inf := InferIdleDrops(recs)
	want := "40 of the 45 sessions the upstream dropped after 1 s or more of silence (of 85 drops) had been silent 5.0 s: an idle timeout near 5.0 s"
	if len(inf) != 1 || inf[0].Text != want || inf[0].Count != 40 || inf[0].Of != 45 {
		t.Fatalf("inferences = %+v, want one: %q", inf, want)
	}
}

// TestInferLifetime: drops at one session age after varied silences name a
// lifetime, not an idle timeout.
func TestInferLifetime(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	t0 := time.Date(2026, 11, 28, 10, 0, 0, 0, time.UTC)
	var recs []capture.SessionRecord
	for i := range 30 {
		dur := 300000 * (0.99 + 0.02*rng.Float64())
		silence := 1000 + 20000*rng.Float64()
		recs = append(recs, synthRecord(i, t0, dur, capture.VerdictClosedUpstream, 10, silence))
	}
	inf := InferIdleDrops(recs)
	if len(inf) != 1 || inf[0].Kind != InferSessionLifetime {
		t.Fatalf("inferences = %+v, want one session-lifetime", inf)
	}
	if math.Abs(inf[0].EstimateMS-300000) > 30000 || !strings.Contains(inf[0].Text, "30 of 30 sessions dropped by the upstream ended at an age of 297–303 s: a session (or token) lifetime near") {
		t.Errorf("inference = %+v, want near 300 s", inf[0])
	}
}

// TestInferNone: scattered silences, too few drops, or drops by the client
// give no inference.
func TestInferNone(t *testing.T) {
	t0 := time.Date(2026, 11, 28, 10, 0, 0, 0, time.UTC)
	var scattered, few, client []capture.SessionRecord
	for i := range 20 {
		v := 1000 * math.Pow(1.5, float64(i)) // each 50% apart: no ±10% cluster of 10
		scattered = append(scattered, synthRecord(i, t0, v*3, capture.VerdictAbnormalUp, 10, v))
		client = append(client, synthRecord(i, t0, 9000, capture.VerdictAbnormalClient, 10, 2000))
	}
	for i := range 2 {
		few = append(few, synthRecord(i, t0, 9000, capture.VerdictAbnormalUp, 10, 2000))
	}
	for name, recs := range map[string][]capture.SessionRecord{"scattered": scattered, "few": few, "client": client} {
		if inf := InferIdleDrops(recs); len(inf) != 0 {
			t.Errorf("%s: inferences = %+v, want none", name, inf)
		}
	}
}
