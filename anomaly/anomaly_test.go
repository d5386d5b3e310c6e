package anomaly_test

import (
	"math"
	"math/big"
	"math/rand/v2"
	"sync"
	"testing"

	"github.com/levqor/levqor/anomaly"
)

// naive computes mean and sample standard deviation the slow, obvious way.
func naive(xs []float64) (mean, sd float64) {
	for _, x := range xs {
		mean += x
	}
	mean /= float64(len(xs))
	for _, x := range xs {
		sd += (x - mean) * (x - mean)
	}
	return mean, math.Sqrt(sd / float64(len(xs)-1))
}

func mustZ(t testing.TB, cfg anomaly.Config) *anomaly.ZScore {
	t.Helper()
	d, err := anomaly.NewZScore(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return d
}

// seedSeries is a latency series: values around 100ms and
// one spike.
var seedSeries = []float64{
	102, 98, 101, 99, 103, 97, 100, 104, 96, 101,
	99, 102, 98, 100, 103, 97, 101, 99, 100, 102,
	98, 131, 101,
}

// TestZScoreAgainstNaive replays a series and recomputes every verdict with
// the naive formula over the accepted values.
func TestZScoreAgainstNaive(t *testing.T) {
	const window = 10
	d := mustZ(t, anomaly.Config{Window: window, MinSamples: 5, MinRelStdDev: 1e-12})
	rng := rand.New(rand.NewPCG(3, 4))
	var accepted []float64
	flagged := 0
	for i := range 500 {
		x := 100 + rng.NormFloat64()*5
		if i%37 == 36 {
			x += 60 // a spike
		}
		r := d.Observe(x)
		if len(accepted) < 5 {
			if !r.WarmingUp || r.Anomaly {
				t.Fatalf("value %d judged during warm-up: %+v", i, r)
			}
			accepted = append(accepted, x)
			continue
		}
		base := accepted[max(0, len(accepted)-window):]
		mean, sd := naive(base)
		z := (x - mean) / sd
		if math.Abs(r.Mean-mean) > 1e-9 || math.Abs(r.StdDev-sd) > 1e-9 || math.Abs(r.Z-z) > 1e-9 {
			t.Fatalf("value %d: got mean %v sd %v z %v, naive %v %v %v", i, r.Mean, r.StdDev, r.Z, mean, sd, z)
		}
		if r.Anomaly != (math.Abs(z) >= 3) {
			t.Fatalf("value %d: anomaly %v at z %v", i, r.Anomaly, z)
		}
		if r.Anomaly {
			flagged++
		} else {
			accepted = append(accepted, x)
		}
	}
	if flagged < 10 {
		t.Fatalf("flagged only %d values; the spikes were missed", flagged)
	}
}

func TestSeedSeries(t *testing.T) {
	d := mustZ(t, anomaly.Config{})
	var flagged []int
	for i, x := range seedSeries {
		if r := d.Observe(x); r.Anomaly {
			flagged = append(flagged, i)
			if r.Grade != anomaly.High || r.Z < 5 {
				t.Errorf("spike z %.2f grade %v", r.Z, r.Grade)
			}
		}
	}
	if len(flagged) != 1 || flagged[0] != 21 {
		t.Fatalf("flagged %v, want only the spike at 21", flagged)
	}
}

func TestNumericalStability(t *testing.T) {
	// Values around 1e9 with variance 1: a naive sum of squares loses all
	// precision (1e18 - 1e18). After many window slides the running
	// statistics must still match an exact computation.
	const window = 50
	d := mustZ(t, anomaly.Config{Window: window, MinRelStdDev: 1e-15, IncludeAnomalies: true})
	rng := rand.New(rand.NewPCG(5, 6))
	var xs []float64
	var last anomaly.Result
	for range 200_000 {
		x := 1e9 + rng.NormFloat64()
		xs = append(xs, x)
		last = d.Observe(x)
	}
	// The last result was judged against the 50 values before it.
	mean, sd := naive(xs[len(xs)-window-1 : len(xs)-1])
	if math.Abs(last.Mean-mean) > 1e-6 || math.Abs(last.StdDev-sd)/sd > 1e-6 {
		t.Fatalf("drift: mean %.9f sd %.9f, exact %.9f %.9f", last.Mean, last.StdDev, mean, sd)
	}
	if math.Abs(sd-1) > 0.5 {
		t.Fatalf("exact sd %v: test data wrong", sd)
	}
}

func TestFlatSeries(t *testing.T) {
	for name, d := range detectors(t, anomaly.Config{}) {
		t.Run(name, func(t *testing.T) {
			for range 30 {
				d.Observe(100)
			}
			if r := d.Observe(100.5); r.Anomaly {
				t.Fatalf("0.5%% wobble on a flat series flagged: %+v", r)
			}
			if r := d.Observe(150); !r.Anomaly || math.IsInf(r.Z, 0) {
				t.Fatalf("50%% jump on a flat series: %+v", r)
			}
		})
	}
	// Zero mean: only MinStdDev can floor it.
	d := mustZ(t, anomaly.Config{MinStdDev: 0.1})
	for range 30 {
		d.Observe(0)
	}
	if r := d.Observe(0.05); r.Anomaly {
		t.Fatalf("%+v", r)
	}
	if r := d.Observe(1); !r.Anomaly || math.Abs(r.Z-10) > 0.1 || r.StdDev != 0.1 {
		t.Fatalf("%+v", r)
	}
}

func detectors(t *testing.T, cfg anomaly.Config) map[string]anomaly.Detector {
	z := mustZ(t, cfg)
	e, err := anomaly.NewEWMA(cfg)
	if err != nil {
		t.Fatal(err)
	}
	r, err := anomaly.NewRobust(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return map[string]anomaly.Detector{"zscore": z, "ewma": e, "robust": r}
}

func TestWarmUp(t *testing.T) {
	for name, d := range detectors(t, anomaly.Config{Window: 10, MinSamples: 4}) {
		t.Run(name, func(t *testing.T) {
			for i, x := range []float64{1, 1000, 2, 3} {
				if r := d.Observe(x); !r.WarmingUp || r.Anomaly {
					t.Fatalf("value %d: %+v", i, r)
				}
			}
			if r := d.Observe(2); r.WarmingUp {
				t.Fatal("still warming up after MinSamples")
			}
		})
	}
}

func TestLevelShiftRebaselines(t *testing.T) {
	for name, d := range detectors(t, anomaly.Config{Window: 20, MinSamples: 5, RebaselineAfter: 3}) {
		t.Run(name, func(t *testing.T) {
			rng := rand.New(rand.NewPCG(7, 8))
			for range 40 {
				d.Observe(100 + rng.NormFloat64())
			}
			var flags []bool
			rebased := -1
			for i := range 20 {
				r := d.Observe(200 + rng.NormFloat64())
				flags = append(flags, r.Anomaly)
				if r.Rebaselined {
					rebased = i
				}
			}
			if !flags[0] || !flags[1] || !flags[2] || rebased != 2 {
				t.Fatalf("shift: anomalies %v, rebaselined at %d; want the first 3 flagged and a rebaseline at 2", flags, rebased)
			}
			for i, f := range flags[3:] {
				if f {
					t.Fatalf("new level still flagged at %d: %v", i+3, flags)
				}
			}
		})
	}
}

func TestSpikeDoesNotContaminate(t *testing.T) {
	d := mustZ(t, anomaly.Config{})
	for _, x := range seedSeries[:20] {
		d.Observe(x)
	}
	before := d.Observe(100)
	if spike := d.Observe(500); !spike.Anomaly {
		t.Fatal("spike missed")
	}
	after := d.Observe(100)
	// The window slid by one normal value (100 replaced 102), nothing else.
	if math.Abs(after.StdDev-before.StdDev) > 0.2 || after.Anomaly {
		t.Fatalf("baseline moved by the spike: sd %v -> %v", before.StdDev, after.StdDev)
	}
	inc := mustZ(t, anomaly.Config{IncludeAnomalies: true, RebaselineAfter: -1})
	for _, x := range seedSeries[:20] {
		inc.Observe(x)
	}
	inc.Observe(500)
	if r := inc.Observe(100); r.StdDev < 50 {
		t.Fatalf("IncludeAnomalies did not take the spike in: sd %v", r.StdDev)
	}
}

func TestDirectionAndSeverity(t *testing.T) {
	mk := func(dir anomaly.Direction) anomaly.Detector {
		d := mustZ(t, anomaly.Config{Direction: dir, MinRelStdDev: 1e-12})
		for i := range 20 {
			d.Observe(float64(100 + i%2*2 - 1)) // 99, 101, ...: sd ≈ 1.03
		}
		return d
	}
	if r := mk(anomaly.Spikes).Observe(80); r.Anomaly {
		t.Fatal("Spikes flagged a drop")
	}
	if r := mk(anomaly.Drops).Observe(120); r.Anomaly {
		t.Fatal("Drops flagged a spike")
	}
	if r := mk(anomaly.Drops).Observe(80); !r.Anomaly {
		t.Fatal("Drops missed a drop")
	}
	for _, tc := range []struct {
		x    float64
		want anomaly.Grade
	}{{102, anomaly.None}, {103.2, anomaly.Low}, {104.2, anomaly.Medium}, {105.3, anomaly.High}} {
		if r := mk(anomaly.Both).Observe(tc.x); r.Grade != tc.want {
			t.Errorf("x=%v z=%.2f: grade %v, want %v", tc.x, r.Z, r.Grade, tc.want)
		}
	}
}

func TestRobustIgnoresOutliersInWindow(t *testing.T) {
	r, _ := anomaly.NewRobust(anomaly.Config{IncludeAnomalies: true, RebaselineAfter: -1})
	z := mustZ(t, anomaly.Config{IncludeAnomalies: true, RebaselineAfter: -1})
	series := []float64{100, 101, 99, 100, 5000, 100, 102, 98, 6000, 101, 99, 100, 100, 101, 99, 7000, 100, 101, 99, 100}
	for _, x := range series {
		r.Observe(x)
		z.Observe(x)
	}
	rr, zr := r.Observe(115), z.Observe(115)
	if !rr.Anomaly {
		t.Fatalf("robust missed 115 against a median of 100: %+v", rr)
	}
	if zr.Anomaly {
		t.Fatalf("the z-score should be blinded by the outliers (that is the point): %+v", zr)
	}
	if rr.Mean != 100 {
		t.Fatalf("median %v, want 100", rr.Mean)
	}
}

func TestRobustMADZeroFallback(t *testing.T) {
	r, _ := anomaly.NewRobust(anomaly.Config{Window: 10, MinSamples: 10, MinRelStdDev: 1e-12})
	for _, x := range []float64{50, 50, 50, 50, 50, 50, 50, 52, 48, 60} { // MAD = 0
		r.Observe(x)
	}
	res := r.Observe(70)
	// mean absolute deviation = (2+2+10)/10 = 1.4 → spread 1.2533*1.4
	want := 20 / (1.2533141373155001 * 1.4)
	if math.Abs(res.Z-want) > 1e-9 || !res.Anomaly {
		t.Fatalf("z %v, want %v (MeanAD fallback)", res.Z, want)
	}
}

func TestEWMA(t *testing.T) {
	d, err := anomaly.NewEWMA(anomaly.Config{Window: 9, MinSamples: 5, MinRelStdDev: 1e-12})
	if err != nil {
		t.Fatal(err)
	}
	for _, x := range []float64{10, 12, 11, 9, 13} {
		d.Observe(x)
	}
	// After warm-up: mean 11, sample variance 2.5; alpha = 0.2.
	r := d.Observe(11)
	if math.Abs(r.Mean-11) > 1e-12 || math.Abs(r.StdDev-math.Sqrt(2.5)) > 1e-12 || r.Z != 0 {
		t.Fatalf("%+v", r)
	}
	// 11 folded in: mean stays 11, variance (1-0.2)*2.5 = 2.
	if r := d.Observe(20); math.Abs(r.StdDev-math.Sqrt(2)) > 1e-12 || !r.Anomaly {
		t.Fatalf("%+v", r)
	}
}

func TestErrorRate(t *testing.T) {
	e, err := anomaly.NewErrorRate(anomaly.ErrorRateConfig{Window: 10, MinSamples: 5})
	if err != nil {
		t.Fatal(err)
	}
	for _, errs := range []int{1, 0, 2, 1, 1, 0, 1, 2, 1, 1} { // ~1% of 100
		e.Observe(errs, 100)
	}
	for _, tc := range []struct {
		errs, total int
		anomaly     bool
		name        string
	}{
		{1, 2, false, "one error in two requests is too few to judge"},
		{2, 100, false, "2% on a 1% baseline is chance"},
		{10, 100, true, "10% on a 1% baseline"},
		{0, 100, false, "drops never count"},
		{5, 4, false, "impossible input"},
	} {
		if r := e.Observe(tc.errs, tc.total); r.Anomaly != tc.anomaly {
			t.Errorf("%s: %+v", tc.name, r)
		}
	}
	zero, _ := anomaly.NewErrorRate(anomaly.ErrorRateConfig{Window: 10, MinSamples: 5})
	for range 10 {
		zero.Observe(0, 100)
	}
	if r := zero.Observe(1, 100); r.Anomaly {
		t.Fatalf("one error over a zero baseline flagged: %+v", r)
	}
	if r := zero.Observe(8, 100); !r.Anomaly {
		t.Fatalf("8%% over a zero baseline missed: %+v", r)
	}
}

func TestConcurrentUse(t *testing.T) {
	for name, d := range detectors(t, anomaly.Config{}) {
		t.Run(name, func(t *testing.T) {
			var wg sync.WaitGroup
			for g := range 4 {
				wg.Go(func() {
					for i := range 2000 {
						d.Observe(100 + float64((i*g)%7))
					}
				})
			}
			wg.Wait()
		})
	}
}

func TestConfigErrors(t *testing.T) {
	for name, cfg := range map[string]anomaly.Config{
		"window 1":             {Window: 1},
		"negative window":      {Window: -3},
		"window past the max":  {Window: anomaly.MaxWindow + 1},
		"window of max int":    {Window: math.MaxInt},
		"negative thresh":      {Threshold: -1},
		"bands out of order":   {Threshold: 3, MediumAt: 2},
		"min samples > window": {Window: 5, MinSamples: 6},
		"rebaseline > window":  {Window: 5, RebaselineAfter: 6},
		"bad direction":        {Direction: 9},
		"NaN MinStdDev":        {MinStdDev: math.NaN()},
		"Inf MinRelStdDev":     {MinRelStdDev: math.Inf(1)},
		"NaN MediumAt":         {MediumAt: math.NaN()},
		"negative MinStdDev":   {MinStdDev: -1},
	} {
		for kind, build := range map[string]func(anomaly.Config) (anomaly.Detector, error){
			"zscore": func(c anomaly.Config) (anomaly.Detector, error) { return anomaly.NewZScore(c) },
			"ewma":   func(c anomaly.Config) (anomaly.Detector, error) { return anomaly.NewEWMA(c) },
			"robust": func(c anomaly.Config) (anomaly.Detector, error) { return anomaly.NewRobust(c) },
		} {
			if _, err := build(cfg); err == nil {
				t.Errorf("%s, %s: accepted", name, kind)
			}
		}
	}
	for _, w := range []int{2, 4, anomaly.MaxWindow} { // RebaselineAfter defaults to at most Window
		if _, err := anomaly.NewRobust(anomaly.Config{Window: w}); err != nil {
			t.Errorf("Window %d refused: %v", w, err)
		}
	}
	d := mustZ(t, anomaly.Config{})
	if r := d.Observe(math.NaN()); r.Anomaly {
		t.Error("NaN flagged")
	}
}

// TestPrecisionAtLargeOffsets: values around 1e12 with unit variance: the
// standard deviation stays within 1e-9 of the exact value (computed with
// math/big), however long the stream.
func TestPrecisionAtLargeOffsets(t *testing.T) {
	for _, offset := range []float64{1e9, 1e12} {
		const window = 50
		d := mustZ(t, anomaly.Config{Window: window, MinRelStdDev: -1, IncludeAnomalies: true})
		rng := rand.New(rand.NewPCG(9, 10))
		var xs []float64
		worst := 0.0
		for i := range 100_000 {
			x := offset + rng.NormFloat64()
			xs = append(xs, x)
			r := d.Observe(x)
			if i > window && i%997 == 0 {
				_, sd := exactStats(xs[len(xs)-window-1 : len(xs)-1])
				worst = max(worst, math.Abs(r.StdDev-sd)/sd)
			}
		}
		t.Logf("offset %g: worst relative error of the standard deviation %.2g", offset, worst)
		if worst > 1e-9 {
			t.Fatalf("offset %g: relative error %.3g > 1e-9", offset, worst)
		}
	}
}

// exactStats is the sample mean and standard deviation in 256-bit floats.
func exactStats(xs []float64) (float64, float64) {
	prec := uint(256)
	sum := new(big.Float).SetPrec(prec)
	for _, x := range xs {
		sum.Add(sum, new(big.Float).SetPrec(prec).SetFloat64(x))
	}
	n := new(big.Float).SetPrec(prec).SetInt64(int64(len(xs)))
	mean := new(big.Float).SetPrec(prec).Quo(sum, n)
	m2 := new(big.Float).SetPrec(prec)
	for _, x := range xs {
		d := new(big.Float).SetPrec(prec).Sub(new(big.Float).SetPrec(prec).SetFloat64(x), mean)
		m2.Add(m2, new(big.Float).SetPrec(prec).Mul(d, d))
	}
	v := new(big.Float).SetPrec(prec).Quo(m2, new(big.Float).SetPrec(prec).SetInt64(int64(len(xs)-1)))
	vf, _ := v.Float64()
	mf, _ := mean.Float64()
	return mf, math.Sqrt(vf)
}

// TestHugeValuesDoNotBlind: a value whose square would overflow is not a
// measurement; the detector still flags a later spike.
func TestHugeValuesDoNotBlind(t *testing.T) {
	for name, d := range detectors(t, anomaly.Config{Window: 20, MinSamples: 5}) {
		t.Run(name, func(t *testing.T) {
			d.Observe(100)
			if r := d.Observe(1.3e154); r.Anomaly || r.WarmingUp {
				t.Fatalf("huge value judged or kept: %+v", r)
			}
			d.Observe(-1e300)
			rng := rand.New(rand.NewPCG(1, 1))
			for range 30 {
				d.Observe(100 + rng.NormFloat64())
			}
			if r := d.Observe(2100); !r.Anomaly || math.IsNaN(r.Mean) || math.IsInf(r.StdDev, 0) {
				t.Fatalf("a 2000σ spike after a huge value: %+v", r)
			}
		})
	}
}

// TestRelativeFloorOff: a negative MinRelStdDev turns the relative floor
// off, so on a flat series any change is an anomaly.
func TestRelativeFloorOff(t *testing.T) {
	d := mustZ(t, anomaly.Config{MinRelStdDev: -1})
	for range 30 {
		d.Observe(100)
	}
	if r := d.Observe(100.5); !r.Anomaly {
		t.Fatalf("without a floor a change on a flat series is an anomaly: %+v", r)
	}
}
