#!/bin/bash
# Median wall time of a whole `totpctl enroll` process, .jpg included, with no
# code on stdin (the record stays pending). Goal: <= 30 ms median, .jpg <= 40 KB.
#
#   bench/enroll.sh [RUNS]      (default 50; builds the release binary once)
#
# Uses hyperfine when it is installed (BENCH_LOOP=1 forces the fallback), else
# a bash loop timed with date +%s%N. BENCH_NO_BUILD=1 uses the release binary
# already built (bench/compare --no-build).
set -euo pipefail
runs=${1:-50}
root=$(cd "$(dirname "$0")/.." && pwd)
[[ -n ${BENCH_NO_BUILD:-} ]] || cargo build --release -q -p enroll_cli --manifest-path "$root/Cargo.toml"
totpctl=${CARGO_TARGET_DIR:-$root/target}/release/totpctl

work=$(mktemp -d /tmp/totpctl-bench.XXXXXX)
trap 'rm -rf "$work"' EXIT
mkdir -m 700 "$work/users" "$work/state"
printf '[paths]\nusers_dir = "%s/users"\nstate_dir = "%s/state"\n[enroll]\nissuer = "Bench"\n' \
    "$work" "$work" >"$work/config.toml"
cd "$work"
enroll=("$totpctl" --config "$work/config.toml" enroll root --qr "$work/root.jpg" --force)

"${enroll[@]}" </dev/null >/dev/null
echo "jpg bytes: $(stat -c %s "$work/root.jpg")"

if [[ -z ${BENCH_LOOP:-} ]] && command -v hyperfine >/dev/null; then
    hyperfine -N --warmup 3 --runs "$runs" --export-json "$work/times.json" "${enroll[*]}" </dev/null
    # hyperfine 1.15 (Debian 12) prints the mean; the goal is on the median.
    median=$(grep -o '"median": *[0-9.e-]*' "$work/times.json" | grep -o '[0-9.e-]*$')
    awk -v m="$median" 'BEGIN { printf "median: %.2f ms\n", m * 1000 }'
    exit 0
fi
times=()
for ((i = 0; i < runs; i++)); do
    start=$(date +%s%N)
    "${enroll[@]}" </dev/null >/dev/null
    end=$(date +%s%N)
    times+=($(((end - start) / 1000)))
done
sorted=($(printf '%s\n' "${times[@]}" | sort -n))
median=${sorted[$((runs / 2))]}
printf 'runs: %d  median: %d.%03d ms  min: %d.%03d ms  max: %d.%03d ms\n' "$runs" \
    $((median / 1000)) $((median % 1000)) \
    $((sorted[0] / 1000)) $((sorted[0] % 1000)) \
    $((sorted[runs - 1] / 1000)) $((sorted[runs - 1] % 1000))
