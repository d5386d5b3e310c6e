package ratelimit

import (
	"hash/maphash"
	"sync"
	"time"
)

// DefaultRedisDeniedKeys is how many denied keys a Redis limiter remembers.
const DefaultRedisDeniedKeys = 10_000

// deniedSweepEvery spaces the sweeps of a full deniedKeys: a sweep reads
// every entry, so a client holding the set full of live keys must not make
// each insert pay for one.
const deniedSweepEvery = time.Second

// deniedKeys remembers keys Redis found over their limit, by their TAT,
// so that their requests until they allow again are denied without a
// round trip. A key allows again once now ≥ TAT − slack (slack: the burst
// window less one interval). The answer is the one Redis would give:
// under GCRA a key's TAT only moves later (every replica's allowed request
// pushes it on; a denial leaves it), so a key denied until t stays denied
// until t whatever other replicas decide meanwhile. Times are µs on the
// limiter's clock (see Redis.clock), the TAT counted from before the
// request that found the key denied was sent, so a remembered denial
// never outlasts Redis's. Keys are held as 64-bit hashes under a random
// seed, as Memory holds them, so a long key costs no more than a short
// one and the caller's strings are not kept.
type deniedKeys struct {
	mu        sync.Mutex
	max       int
	slack     int64
	seed      maphash.Seed
	tats      map[uint64]int64
	nextSweep int64
}

func newDeniedKeys(max int, slack int64) *deniedKeys {
	return &deniedKeys{max: max, slack: slack, seed: maphash.MakeSeed(), tats: make(map[uint64]int64)}
}

// lookup reports whether key is denied at now, and its TAT if so.
func (d *deniedKeys) lookup(key string, now int64) (tat int64, ok bool) {
	h := maphash.String(d.seed, key)
	d.mu.Lock()
	defer d.mu.Unlock()
	tat, ok = d.tats[h]
	if !ok {
		return 0, false
	}
	if now >= tat-d.slack {
		delete(d.tats, h)
		return 0, false
	}
	return tat, true
}

// add remembers key as denied with its TAT. When the set is full it drops
// the entries that have run out, at most once per deniedSweepEvery; if
// none has, key is not remembered and its next request asks Redis, as
// without the set.
func (d *deniedKeys) add(key string, tat, now int64) {
	h := maphash.String(d.seed, key)
	d.mu.Lock()
	defer d.mu.Unlock()
	if _, ok := d.tats[h]; !ok && len(d.tats) >= d.max {
		if now < d.nextSweep {
			return
		}
		d.nextSweep = now + deniedSweepEvery.Microseconds()
		for h, t := range d.tats {
			if now >= t-d.slack {
				delete(d.tats, h)
			}
		}
		if len(d.tats) >= d.max {
			return
		}
	}
	d.tats[h] = tat
}
