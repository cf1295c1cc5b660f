#!/usr/bin/env bash
# The whole test suite, on a fresh machine too: installs what the tests need when it is
# missing (etcd, protoc, chromium and chromedriver from Debian's packages, schemathesis from
# PyPI), then runs
# `cargo test --workspace` with any extra arguments. `--install-only` stops after installing.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

as_root=()
[[ "$(id -u)" -ne 0 ]] && as_root=(sudo)

need=()
command -v etcd >/dev/null || need+=(etcd-server)          # the replicated ledger's tests
command -v protoc >/dev/null || need+=(protobuf-compiler)  # etcd-client's build script
command -v chromium >/dev/null || need+=(chromium)           # the dashboard's browser test
command -v chromedriver >/dev/null || need+=(chromium-driver)
if ((${#need[@]})); then
    echo "installing ${need[*]} (apt-get)"
    "${as_root[@]}" apt-get update -qq
    DEBIAN_FRONTEND=noninteractive "${as_root[@]}" apt-get install -y -qq "${need[@]}"
fi
# The Walrus conformance test runs schemathesis (`st`).
if ! command -v st >/dev/null; then
    echo "installing schemathesis (pip)"
    python3 -m pip install --quiet --disable-pip-version-check --root-user-action=ignore schemathesis
    command -v pyenv >/dev/null && pyenv rehash || true
fi
# Read all of etcd's output: `| head -n 1` closes the pipe early, and under pipefail the
# SIGPIPE etcd then gets (exit 141) fails the script.
etcd --version | sed -n 1p
protoc --version
st --version
chromium --version
chromedriver --version

if [[ "${1:-}" == "--install-only" ]]; then
    exit 0
fi
exec cargo test --workspace "$@"
