#!/usr/bin/env bash
# Prepare this machine to run Go Windows test binaries under Wine:
#
#   bash .ci/wine-setup.sh
#   GOOS=windows go test -exec "$PWD/.ci/wine-exec" ./...
#   .ci/wine-stop.sh
#
# Idempotent; runs as root on Debian 12 with no display. It
#   1. installs wine, wine64 and binutils-mingw-w64-x86-64 from apt (only if
#      one of them is missing; 64-bit Wine only, no i386 architecture needed),
#   2. creates and initialises the Wine prefix $WINEPREFIX (default
#      $REPO/.wine) headlessly,
#   3. builds .ci/wine/bcryptprimitives.s into bcryptprimitives.dll and puts it
#      in the prefix's system32, unless Wine already has that DLL: Go >= 1.22
#      aborts at start ("bcryptprimitives.dll not found") on Wine 8.0,
#   4. checks the result with a tiny Go program, if go is on PATH
#      (WINE_SETUP_VERIFY=0 skips that).
# WINE_SETUP_RACE=1 also installs gcc-mingw-w64-x86-64, for
#   GOOS=windows CGO_ENABLED=1 CC=x86_64-w64-mingw32-gcc go test -race -exec ...
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
repo=$(dirname "$here")
export WINEPREFIX=${WINEPREFIX:-$repo/.wine}
export WINEDEBUG=${WINEDEBUG:--all}
# No menu entries, and no offers to install Mono or Gecko (nothing to
# download them from, and nothing here needs them).
export WINEDLLOVERRIDES=${WINEDLLOVERRIDES:-winemenubuilder.exe=d;mscoree,mshtml=}
unset DISPLAY WAYLAND_DISPLAY

log() { printf 'wine-setup: %s\n' "$*" >&2; }

# 1. Packages.
packages=(wine wine64 binutils-mingw-w64-x86-64)
# WINE_SETUP_RACE=1 adds the mingw C compiler that `go test -race` needs for
# GOOS=windows (cgo): about 360 MB more.
if [[ ${WINE_SETUP_RACE:-0} != 0 ]]; then
	packages+=(gcc-mingw-w64-x86-64)
fi
missing=()
for p in "${packages[@]}"; do
	if [[ $(dpkg-query -W -f='${Status}' "$p" 2>/dev/null) != "install ok installed" ]]; then
		missing+=("$p")
	fi
done
if ((${#missing[@]})); then
	log "installing ${missing[*]}"
	export DEBIAN_FRONTEND=noninteractive
	apt-get update -q
	apt-get install -y -q --no-install-recommends "${packages[@]}"
fi
log "$(wine --version)"

# 2. Prefix. Wine's own processes are sent to a log file so that none of them
# keeps this script's stdout or stderr open.
mkdir -p "$WINEPREFIX"
winelog=$WINEPREFIX/wine-setup.log
# A persistent server (left by .ci/wine-exec) would make `wineserver -w`
# below wait forever: stop it. Only this prefix's server is affected.
wineserver -k 2>/dev/null || true
wineserver -w
: >"$winelog"
if [[ ! -f $WINEPREFIX/system.reg ]]; then
	log "creating prefix $WINEPREFIX"
	wineboot -i </dev/null >>"$winelog" 2>&1
fi
# Also brings a prefix made by another Wine version up to date.
wine cmd /c exit 0 </dev/null >>"$winelog" 2>&1
wineserver -w

# 3. bcryptprimitives.dll.
sys32=$WINEPREFIX/drive_c/windows/system32
has_builtin=
for d in /usr/lib/x86_64-linux-gnu/wine /usr/lib64/wine /usr/lib/wine; do
	f=$d/x86_64-windows/bcryptprimitives.dll
	if [[ -f $f ]] && x86_64-w64-mingw32-objdump -p "$f" | grep -qw ProcessPrng; then
		has_builtin=$f
		break
	fi
done
if [[ -n $has_builtin ]]; then
	log "Wine has its own $has_builtin with ProcessPrng; no stand-in needed"
else
	build=$(mktemp -d)
	trap 'rm -rf "$build"' EXIT
	x86_64-w64-mingw32-as -o "$build/bcryptprimitives.o" "$here/wine/bcryptprimitives.s"
	x86_64-w64-mingw32-dlltool -d "$here/wine/advapi32.def" -l "$build/libadvapi32.a"
	x86_64-w64-mingw32-ld -s --dll --no-insert-timestamp -e DllEntry --subsystem windows \
		-o "$build/bcryptprimitives.dll" \
		"$build/bcryptprimitives.o" "$here/wine/bcryptprimitives.def" "$build/libadvapi32.a"
	if cmp -s "$build/bcryptprimitives.dll" "$sys32/bcryptprimitives.dll"; then
		log "bcryptprimitives.dll stand-in already installed"
	else
		install -m 0644 "$build/bcryptprimitives.dll" "$sys32/bcryptprimitives.dll"
		log "installed bcryptprimitives.dll stand-in (ProcessPrng -> advapi32.SystemFunction036)"
	fi
fi

# 4. Check that a Go program starts and gets random bytes.
if [[ ${WINE_SETUP_VERIFY:-1} != 0 ]] && command -v go >/dev/null; then
	probe=$(mktemp -d)
	cat >"$probe/go.mod" <<'GOMOD'
module probe

go 1.22
GOMOD
	cat >"$probe/main.go" <<'GO'
package main

import (
	"crypto/rand"
	"fmt"
	"os"
)

func main() {
	b := make([]byte, 8)
	if _, err := rand.Read(b); err != nil {
		fmt.Println("rand:", err)
		os.Exit(1)
	}
	fmt.Printf("ok %x\n", b)
}
GO
	(cd "$probe" && GOOS=windows GOARCH=amd64 CGO_ENABLED=0 GOFLAGS= GOTOOLCHAIN=local go build -o probe.exe .)
	# Output to a file, not a pipe: a pipe would be held open by the
	# wineserver that this launch starts, until that server exits.
	if timeout 120 wine "$probe/probe.exe" </dev/null >"$probe/out" 2>>"$winelog" &&
		out=$(<"$probe/out") && [[ $out == ok* ]]; then
		log "Go probe under Wine: $out"
	else
		log "Go probe under Wine failed: $(cat "$probe/out"); see $winelog"
		tail -n 20 "$winelog" >&2
		rm -rf "$probe"
		exit 1
	fi
	rm -rf "$probe"
	wineserver -w
fi
log "ready: WINEPREFIX=$WINEPREFIX"
