#!/bin/bash
# staticcheck v0.8.2 on every package (both build tags), built once from a throwaway module into
# the cache (the module proxy refuses version lists, so the version is pinned).
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH=/usr/local/go/bin:$PATH
bin=${XDG_CACHE_HOME:-$HOME/.cache}/mxomemo/staticcheck-v0.8.2
if [ ! -x "$bin/staticcheck" ]; then
	tmp=$(mktemp -d)
	trap 'rm -rf "$tmp"' EXIT
	(cd "$tmp" && printf 'module sc\ngo 1.26\n' >go.mod &&
		GOFLAGS=-mod=mod go get honnef.co/go/tools/cmd/staticcheck@v0.8.2 >/dev/null &&
		GOBIN="$bin" go install honnef.co/go/tools/cmd/staticcheck)
fi
"$bin/staticcheck" -tags 'goolm integration' ./...
