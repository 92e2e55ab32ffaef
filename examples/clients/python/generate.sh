#!/usr/bin/env bash
# Generates the Python stubs of pasarela's contracts from proto/ with grpcio-tools into
# generated/ (not committed). google.type and google.rpc come from googleapis-common-protos.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
proto="$here/../../../proto"
rm -rf "$here/generated"
mkdir -p "$here/generated"
mapfile -t files < <(cd "$proto" && find pasarela -name '*.proto' | sort)
(cd "$proto" && python3 -m grpc_tools.protoc -I . \
  --python_out="$here/generated" --grpc_python_out="$here/generated" "${files[@]}")
echo "generated ${#files[@]} files into $here/generated"
