#!/usr/bin/env bash
# Installs everything the project needs on a fresh machine: system packages, the Rust
# toolchain's components, and the Python tools the tests use (into ./.venv). Idempotent.
# `--main` installs only what the main job (`aegis run`) uses: no nightly toolchain, no
# cargo-fuzz (the tests' fuzz smoke run is their only user).
set -euo pipefail
cd "$(dirname "$0")/.."
main_only=false
[ "${1:-}" = "--main" ] && main_only=true

need_apt=()
command -v gzip >/dev/null || need_apt+=(gzip)
command -v python3 >/dev/null || need_apt+=(python3)
python3 -c 'import venv, ensurepip' 2>/dev/null || need_apt+=(python3-venv)
if [ ${#need_apt[@]} -gt 0 ]; then
  echo "setup: installing system packages: ${need_apt[*]}"
  apt-get update -qq && apt-get install -y -qq "${need_apt[@]}"
fi

command -v cargo >/dev/null || { echo "setup: cargo not found; install Rust (rustup) first" >&2; exit 1; }
# rust-toolchain.toml pins the toolchain; make sure its components are present.
rustup component add rustfmt clippy >/dev/null 2>&1 || true
# The fuzz smoke run (scripts/fuzz.sh) needs a nightly toolchain (libFuzzer with
# AddressSanitizer) and cargo-fuzz.
if ! $main_only && ! rustup run nightly rustc --version >/dev/null 2>&1; then
  echo "setup: installing the nightly toolchain for fuzzing"
  rustup toolchain install nightly --profile minimal \
    || { echo "setup: no nightly toolchain and rustup cannot fetch one" >&2; exit 1; }
fi
if ! $main_only && ! cargo fuzz --version 2>/dev/null | grep -q '^cargo-fuzz 0\.13\.'; then
  echo "setup: installing cargo-fuzz"
  cargo install cargo-fuzz --version 0.13.2 --locked --quiet
fi

# The tests' Python peers and the sweep tool's Ray (tools/sweep).
stamp=.venv/.requirements.sha256
want=$(cat tests/python/requirements.txt tools/sweep/requirements.txt | sha256sum | cut -d' ' -f1)
if [ ! -x .venv/bin/python ] || [ "$(cat "$stamp" 2>/dev/null)" != "$want" ]; then
  echo "setup: creating .venv with the test peers and the sweep tool"
  python3 -m venv .venv
  .venv/bin/pip install -q --disable-pip-version-check --no-cache-dir -r tests/python/requirements.txt -r tools/sweep/requirements.txt
  echo "$want" > "$stamp"
fi

# libtorch for the ML sidecar (tch 0.24 expects torch 2.11.0): PyPI's wheel, CUDA libraries
# included (~2.7 GB), in the same .venv. .venv/torch links to its package directory, which
# .cargo/config.toml hands the build as LIBTORCH (nothing to export by hand).
ml_stamp=.venv/.ml-requirements.sha256
ml_want=$(sha256sum ml-sidecar/requirements.txt | cut -d' ' -f1)
if [ "$(cat "$ml_stamp" 2>/dev/null)" != "$ml_want" ] || [ ! -e .venv/torch/lib/libtorch_cpu.so ]; then
  echo "setup: installing torch (libtorch for aegis-sidecar) into .venv"
  .venv/bin/pip install -q --disable-pip-version-check --no-cache-dir -r ml-sidecar/requirements.txt
  site=$(.venv/bin/python -c 'import torch, os; print(os.path.relpath(os.path.dirname(torch.__file__), ".venv"))')
  ln -sfn "$site" .venv/torch
  echo "$ml_want" > "$ml_stamp"
fi
