#!/usr/bin/env bash
# Fuzzes every parser of kernel replies (the targets in fuzz/fuzz_targets/)
# for a fixed time each, starting from the committed seed corpus.
#
#   tests/fuzz.sh [SECONDS-PER-TARGET] [TARGET...]
#
# Default: 20 s for every target, one after the other. Installs cargo-fuzz
# from crates.io if `cargo fuzz` is missing (version CARGO_FUZZ_VERSION),
# builds the targets with libFuzzer's coverage instrumentation, overflow
# checks and debug assertions (stable Rust, no sanitizer), then runs each
# binary on a copy of fuzz/corpus/TARGET/ in a temporary folder: new corpus
# entries and crash artifacts go there, never into the working tree.
#
# A crash (panic, overflow, hang over FUZZ_TIMEOUT s) prints the target, the
# panic and the input as hex, keeps the temporary folder, and makes the
# script exit 1 once every target has run. Reproduce with
#   cargo fuzz run --sanitizer none TARGET ARTIFACT
set -euo pipefail

ROOT=$(cd -- "$(dirname -- "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"

SECONDS_PER_TARGET=${1:-20}
shift $(($# > 0 ? 1 : 0))
if ! [[ $SECONDS_PER_TARGET =~ ^[1-9][0-9]*$ ]]; then
    echo "fuzz.sh: SECONDS-PER-TARGET must be a positive integer, not '$SECONDS_PER_TARGET'" >&2
    exit 2
fi
CARGO_FUZZ_VERSION=${CARGO_FUZZ_VERSION:-0.13.2}
# An input that takes longer than this is a hang: a parser must return.
FUZZ_TIMEOUT=${FUZZ_TIMEOUT:-10}

# cargo-fuzz, from crates.io, once.
if cargo fuzz --version >/dev/null 2>&1; then
    echo "fuzz: $(cargo fuzz --version) present" >&2
else
    echo "fuzz: installing cargo-fuzz $CARGO_FUZZ_VERSION from crates.io" >&2
    cargo install --quiet --locked cargo-fuzz --version "$CARGO_FUZZ_VERSION"
fi

if (($#)); then
    targets=("$@")
    for t in "${targets[@]}"; do
        [[ -f fuzz/fuzz_targets/$t.rs ]] || {
            echo "fuzz.sh: no target '$t' (fuzz/fuzz_targets/$t.rs)" >&2
            exit 2
        }
    done
else
    targets=()
    for f in fuzz/fuzz_targets/*.rs; do
        t=${f##*/}
        targets+=("${t%.rs}")
    done
fi

# --sanitizer none: the parsers are safe Rust, so AddressSanitizer would find
# nothing a panic does not, at half the speed (and it needs nightly flags).
# Overflow checks and debug assertions come from fuzz/Cargo.toml's release
# profile. cargo-fuzz builds for the host triple.
host=$(rustc -vV | sed -n 's/^host: //p')
echo "fuzz: building ${#targets[@]} targets" >&2
cargo fuzz build --sanitizer none --target "$host" >&2
target_dir=$(cargo metadata --manifest-path fuzz/Cargo.toml --format-version 1 --no-deps |
    sed -n 's/.*"target_directory":"\([^"]*\)".*/\1/p')
bin_dir=$target_dir/$host/release

tmp=$(mktemp -d -t plugctl-fuzz.XXXXXX)
failed=()
cleanup() {
    if ((${#failed[@]})); then
        echo "fuzz: corpora, logs and artifacts kept in $tmp" >&2
    else
        rm -rf "$tmp"
    fi
}
trap cleanup EXIT

# "stat::NAME: VALUE" from libFuzzer's final statistics.
stat() { sed -n "s/^stat::$1: *//p" "$2" | tail -n 1; }

summary=()
for t in "${targets[@]}"; do
    corpus=$tmp/corpus/$t
    artifacts=$tmp/artifacts/$t
    log=$tmp/$t.log
    mkdir -p "$corpus" "$artifacts"
    # A new target may have no seeds yet: it starts from nothing.
    if [[ -d fuzz/corpus/$t ]]; then
        cp -R "fuzz/corpus/$t/." "$corpus/"
    fi
    seeds=$(find "$corpus" -type f | wc -l)
    echo "fuzz: $t for ${SECONDS_PER_TARGET} s from $seeds seeds" >&2
    rc=0
    "$bin_dir/$t" -max_total_time="$SECONDS_PER_TARGET" -timeout="$FUZZ_TIMEOUT" \
        -print_final_stats=1 -artifact_prefix="$artifacts/" "$corpus" >"$log" 2>&1 || rc=$?
    execs=$(stat number_of_executed_units "$log")
    units=$(find "$corpus" -type f | wc -l)
    cov=$(grep -o 'cov: [0-9]*' "$log" | tail -n 1 | cut -d' ' -f2)
    crashes=$(find "$artifacts" -type f)
    if ((rc != 0)) || [[ -n $crashes ]]; then
        failed+=("$t")
        summary+=("$(printf '%-18s %10s execs  cov %-5s corpus %-4s FAILED (exit %s)' \
            "$t" "${execs:-?}" "${cov:-?}" "$units" "$rc")")
        echo "fuzz: FAILED: target $t (exit $rc); libFuzzer said:" >&2
        # The panic and libFuzzer's report, without progress lines and
        # backtrace frames (the whole log is kept in the temporary folder).
        grep -vE '^#[0-9]|^ +[0-9]+: |^ +at ' "$log" | tail -n 25 >&2
        for a in $crashes; do
            echo "fuzz: target $t, input ${a##*/} ($(wc -c <"$a") bytes) as hex:" >&2
            od -An -tx1 -v "$a" | sed 's/^ *//' >&2
        done
    else
        summary+=("$(printf '%-18s %10s execs  cov %-5s corpus %-4s ok' \
            "$t" "${execs:-?}" "${cov:-?}" "$units")")
    fi
done

echo
echo "fuzz: ${SECONDS_PER_TARGET} s per target"
printf '%s\n' "${summary[@]}"
if ((${#failed[@]})); then
    echo "fuzz: FAILED: ${failed[*]}" >&2
    exit 1
fi
