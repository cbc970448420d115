#!/bin/sh
# Installs Syndace's reference OMEMO stack from Debian, used by the omemo
# interop tests (omemo/testdata/pypeer/peer.py). Idempotent: installs nothing
# when the modules already import under Debian's interpreter.
set -eu

PKGS="python3-xmlschema python3-omemo python3-oldmemo python3-twomemo python3-x3dh python3-doubleratchet python3-xeddsa"

if [ -x /usr/bin/python3 ] && /usr/bin/python3 -c 'import omemo, oldmemo, twomemo, oldmemo.etree, twomemo.etree' 2>/dev/null; then
	echo "install-omemo-peers: python-omemo stack already installed"
	exit 0
fi

SUDO=""
if [ "$(id -u)" -ne 0 ]; then
	SUDO="sudo"
fi

export DEBIAN_FRONTEND=noninteractive
if ! $SUDO apt-get install -y --no-install-recommends $PKGS; then
	$SUDO apt-get update
	$SUDO apt-get install -y --no-install-recommends $PKGS
fi

/usr/bin/python3 -c 'import omemo, oldmemo, twomemo, oldmemo.etree, twomemo.etree'
echo "install-omemo-peers: python-omemo stack installed"
