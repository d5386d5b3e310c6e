#!/usr/bin/env bash
# serial-pinned.sh runs a serial Redis benchmark with the client and
# redis-server each pinned to its own CPU, so that neither waits for the
# scheduler to find it a core: on a 2-core machine the scheduler's choices
# otherwise move a serial round trip by tens of percent between runs.
#
#   ./serial-pinned.sh [RUNS] [BENCH] [BENCHTIME]
#
# Defaults: 15 runs of RedisLimiterSerialTurns/allowed, 20000x. Prints
# each run's benchmark line, then each implementation's ns per decision
# over ulule's in the same run, sorted, with the median and how many runs
# it was ahead in, and where the benchmark reports them, the medians of
# the CPU each process spent per decision, Levqor minus ulule. Needs two
# CPUs, taskset and redis-server.
set -euo pipefail
cd "$(dirname "$0")"
runs=${1:-15}
bench=${2:-RedisLimiterSerialTurns/allowed}
benchtime=${3:-20000x}
[ "$(nproc)" -ge 2 ] || { echo "serial-pinned: needs two CPUs" >&2; exit 2; }
real=$(command -v redis-server) || { echo "serial-pinned: no redis-server on PATH" >&2; exit 2; }
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
go test -c -o "$tmp/bench.test" .
# The benchmark starts redis-server from PATH: this one runs on CPU 1.
mkdir "$tmp/bin"
printf '#!/bin/sh\nexec taskset -c 1 %s "$@"\n' "$real" > "$tmp/bin/redis-server"
chmod +x "$tmp/bin/redis-server"
for _ in $(seq "$runs"); do
  PATH="$tmp/bin:$PATH" GOMAXPROCS=1 taskset -c 0 "$tmp/bench.test" \
    -test.run XXX -test.bench "$bench" -test.benchtime "$benchtime" | grep '^Benchmark'
done | tee "$tmp/out.txt"
awk '
  function sort(a, k,   i, j, t) {
    for (i = 1; i < k; i++) for (j = i; j > 0 && a[j-1] > a[j]; j--) { t = a[j]; a[j] = a[j-1]; a[j-1] = t }
  }
  function median(a, k) { sort(a, k); return k % 2 ? a[int(k/2)] : (a[k/2-1] + a[k/2]) / 2 }
  {
    delete v
    for (i = 2; i < NF; i++) v[$(i+1)] = $i
    if (!("ulule-ns/op" in v)) next
    for (m in v) if (m ~ /-ns\/op$/ && m != "ulule-ns/op") {
      name = substr(m, 1, length(m) - 6)
      if (!(name in cnt)) names[nn++] = name
      r[name, cnt[name]++] = v[m] / v["ulule-ns/op"]
    }
    if ("levqor-client-cpu-µs/op" in v) {
      dc[n] = v["levqor-client-cpu-µs/op"] - v["ulule-client-cpu-µs/op"]
      dr[n] = v["levqor-redis-cpu-µs/op"] - v["ulule-redis-cpu-µs/op"]
      n++
    }
  }
  END {
    if (nn == 0) { print "serial-pinned: no benchmark line with ulule in it" > "/dev/stderr"; exit 1 }
    for (x = 0; x < nn; x++) {
      name = names[x]; k = cnt[name]; ahead = 0; line = ""
      for (i = 0; i < k; i++) { s[i] = r[name, i]; if (s[i] < 1) ahead++ }
      med = median(s, k)
      for (i = 0; i < k; i++) line = line sprintf(" %.3f", s[i])
      printf "%s÷ulule (ns per decision):%s\n  median %.3f, ahead in %d of %d\n", name, line, med, ahead, k
    }
    if (n > 0) printf "CPU per decision, Levqor minus ulule (medians): client %+.2f µs, redis-server %+.2f µs\n", median(dc, n), median(dr, n)
  }' "$tmp/out.txt"
