#!/usr/bin/env bash
# Runs every test plugctl has, installing what they need on a fresh Debian 12
# machine (run as root): formatting and lints, unit tests (golden bytes,
# orchestration against a fake kernel), host tests (this machine's kernel, in
# private network namespaces), a fixed-time fuzzing run of the reply parsers
# (tests/fuzz.sh), the kernel tests in a VM on Debian's 6.1 and 6.12 kernels,
# then the VM lab's self-test. This is what CI runs (.ci/run).
set -euo pipefail

ROOT=$(cd -- "$(dirname -- "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"

step() { printf '\n=== %s ===\n' "$*"; }

step "installing test dependencies"
tests/vm/install-deps.sh
tests/vm/kernels.sh all >/dev/null

step "cargo fmt --check"
cargo fmt --all -- --check
# The fuzz crate is a workspace of its own (fuzz/Cargo.toml).
cargo fmt --manifest-path fuzz/Cargo.toml -- --check

step "cargo clippy"
cargo clippy --workspace --all-targets --features vm-tests -- -D warnings

step "unit and host tests"
cargo test --workspace

# Every parser of kernel replies, from the seed corpus in fuzz/corpus/
# (installs cargo-fuzz if missing, 1 min; about 3 min to build, then 20 s
# per target: under 8 min in all on a fresh machine).
FUZZ_SECONDS=${FUZZ_SECONDS:-20}
step "fuzzing the parsers ($FUZZ_SECONDS s per target)"
tests/fuzz.sh "$FUZZ_SECONDS"

step "kernel tests in the VM (6.1 and 6.12)"
tests/vm/kernel-tests.sh

# The lab's own checks: the guest's output reaches the host with and without
# udev on the host, and lost output fails loudly (one kernel: the channel
# does not depend on it).
step "VM lab self-test (6.1)"
tests/vm/selftest.sh 6.1
