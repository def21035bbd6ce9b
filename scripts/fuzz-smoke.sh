#!/usr/bin/env bash
# Short fuzzing run of every cargo-fuzz target (CI smoke test).
#
#   scripts/fuzz-smoke.sh [SECONDS_PER_TARGET]   (default 20; 7 targets)
#
# Installs cargo-fuzz (cargo install --locked) if it is missing. The machine
# only has a stable toolchain, so the nightly-only flags that cargo-fuzz passes
# (-Zsanitizer, -Cpasses=sancov) are unlocked with RUSTC_BOOTSTRAP=1. Targets
# are built with AddressSanitizer, debug assertions and overflow checks. Each
# run starts from the committed seeds (fuzz/seeds/<target>) plus whatever
# corpus earlier runs left in fuzz/corpus/<target>. Any crash, panic, leak or
# timeout fails the script; the crashing input is in fuzz/artifacts/<target>/.
#
# Environment: FUZZ_SANITIZER=none to build without ASan (about 3x faster),
# FUZZ_TARGETS="config login" to run a subset.
set -euo pipefail

seconds=${1:-20}
cd "$(dirname "$0")/.."
export PATH="$HOME/.cargo/bin:$PATH"
export RUSTC_BOOTSTRAP=1
sanitizer=${FUZZ_SANITIZER:-address}
targets=${FUZZ_TARGETS:-config record state module_args answer login ldap_entry}

if ! cargo fuzz --version >/dev/null 2>&1; then
    echo "fuzz-smoke: installing cargo-fuzz" >&2
    cargo install cargo-fuzz --locked
fi

cargo fuzz build --sanitizer "$sanitizer"

failed=()
for target in $targets; do
    mkdir -p "fuzz/corpus/$target" "fuzz/artifacts/$target"
    log="fuzz/artifacts/$target/smoke.log"
    echo "fuzz-smoke: $target for ${seconds}s" >&2
    if cargo fuzz run --sanitizer "$sanitizer" "$target" \
        "fuzz/corpus/$target" "fuzz/seeds/$target" -- \
        -max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 \
        -print_final_stats=1 >"$log" 2>&1; then
        runs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log")
        echo "fuzz-smoke: $target ok, ${runs:-?} executions" >&2
    else
        echo "fuzz-smoke: $target FAILED; the end of its log:" >&2
        tail -n 40 "$log" >&2
        failed+=("$target")
    fi
done

# The login target's sandboxes (one per fuzzing process, on tmpfs when there
# is one); libFuzzer exits without running destructors.
for dir in /dev/shm/pam_totp-fuzz-login-* "${TMPDIR:-/tmp}"/pam_totp-fuzz-login-*; do
    [[ -d $dir ]] || continue
    pid=${dir##*-}
    [[ -d /proc/$pid ]] || rm -rf "$dir"
done

if ((${#failed[@]})); then
    echo "fuzz-smoke: crashes in: ${failed[*]} (inputs in fuzz/artifacts/)" >&2
    exit 1
fi
echo "fuzz-smoke: all targets ok" >&2
