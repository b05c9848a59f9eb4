#!/usr/bin/env bash
# Binds a persisted directory onto its place from an activation script, for a system that
# starts without an initrd (a vpsFree.cz container): impermanence's own bind mount comes
# later, from systemd, after NixOS's `users` activation script has written the uid/gid map
# into /var/lib/nixos on the root the platform empties (vpsadminos #81, #86). Run before
# `users` (modules/server-defaults.nix orders it), it makes that write land in persistPath.
#
# Usage: early-bind.bash SOURCE TARGET   (absolute paths; SOURCE under persistPath)
# Already a mountpoint: nothing to do (every later activation, a switch). A missing SOURCE
# or TARGET is made (root's, 0755, as impermanence makes it); a symlink anywhere on either
# path is refused, never followed.
set -o errexit -o nounset -o pipefail
shopt -s inherit_errexit

if (($# != 2)) || [[ $1 != /* || $2 != /* ]]; then
  echo "early-bind: usage: early-bind.bash SOURCE TARGET (absolute paths)" >&2
  exit 2
fi
source=$1
target=$2

if mountpoint -q -- "$target"; then
  exit 0
fi
for path in "$source" "$target"; do
  # realpath -m resolves every symlink on the way without needing the path to exist.
  if [[ $(realpath -m -- "$path") != "$path" ]]; then
    echo "early-bind: $path goes through a symlink (or is not normalised): not bound" >&2
    exit 1
  fi
done
# Missing parents get 0755 too, through this umask.
umask 022
# shellcheck disable=SC2174
mkdir -p -m 0755 -- "$source" "$target"
mount --bind -- "$source" "$target"
echo "early-bind: bound $source on $target"
