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

// deniedKeys remembers keys Redis found over their limit and until when,
// so that their requests until then are denied without a round trip. The
// answer is the one Redis would give: under GCRA a key's TAT only moves
// later (every replica's allowed request pushes it on; a denial leaves
// it), so a key denied until t stays denied until t whatever other
// replicas decide meanwhile. Times are µs on the limiter's clock (see
// Redis.clock), taken before the request that found the key denied was
// sent, so a remembered denial never outlasts Redis's. Keys are held as
// 64-bit hashes under a random seed, as Memory holds them, so a long key
// costs no more than a short one and the caller's strings are not kept.
type deniedKeys struct {
	mu        sync.Mutex
	max       int
	seed      maphash.Seed
	keys      map[uint64]deniedKey
	nextSweep int64
}

type deniedKey struct {
	until int64 // the key allows again from here
	tat   int64 // the key's TAT: its burst is full again from here
}

func newDeniedKeys(max int) *deniedKeys {
	return &deniedKeys{max: max, seed: maphash.MakeSeed(), keys: make(map[uint64]deniedKey)}
}

// lookup reports whether key is denied at now, and its entry if so.
func (d *deniedKeys) lookup(key string, now int64) (deniedKey, bool) {
	h := maphash.String(d.seed, key)
	d.mu.Lock()
	defer d.mu.Unlock()
	k, ok := d.keys[h]
	if !ok {
		return deniedKey{}, false
	}
	if now >= k.until {
		delete(d.keys, h)
		return deniedKey{}, false
	}
	return k, true
}

// add remembers key as denied. When the set is full it drops the entries
// that have run out, at most once per deniedSweepEvery; if none has, key
// is not remembered and its next request asks Redis, as without the set.
func (d *deniedKeys) add(key string, k deniedKey, now int64) {
	h := maphash.String(d.seed, key)
	d.mu.Lock()
	defer d.mu.Unlock()
	if _, ok := d.keys[h]; !ok && len(d.keys) >= d.max {
		if now < d.nextSweep {
			return
		}
		d.nextSweep = now + deniedSweepEvery.Microseconds()
		for h, k := range d.keys {
			if now >= k.until {
				delete(d.keys, h)
			}
		}
		if len(d.keys) >= d.max {
			return
		}
	}
	d.keys[h] = k
}
