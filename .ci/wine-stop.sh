#!/usr/bin/env bash
# Stop the wineserver (and Wine's services) that .ci/wine-exec started.
set -euo pipefail
exec "$(dirname "${BASH_SOURCE[0]}")/wine-exec" --stop
