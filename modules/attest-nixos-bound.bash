#!/usr/bin/env bash
# blankslate: notes whether /var/lib/nixos is a mountpoint at this moment, for `blankslate
# attest` (check nixos-bound). Run from the activation script blankslateNixosBound, which
# modules/attest.nix orders right before NixOS's `users` script (the one that writes the
# uid/gid map into /var/lib/nixos): a persisted /var/lib/nixos that is not bound yet then
# means that map lands on the root the next boot erases.
#
# Usage: nixos-bound.bash [TARGET]   (default /var/lib/nixos)
# Writes $BLANKSLATE_RECORD_DIR/nixos-bound (default /run/blankslate/nixos-bound):
#   bound=yes|no
#   time=<UTC, %Y-%m-%dT%H:%M:%SZ>
# mountpoint(1) reads /proc/self/mountinfo, or without /proc (the chroot of the systemd
# initrd's initrd-nixos-activation, before the activation mounts it) compares the device of
# TARGET with its parent's: persistPath is always another filesystem or btrfs subvolume.
# Only the first activation of a boot writes it (/run is empty at every boot): a later
# switch, when everything is long mounted, keeps what the boot saw. The directory is made
# 0755 when missing and must be a directory (not a symlink) of this user that no one else
# may write; the file is a new temporary file renamed onto its name (a symlink planted there
# is replaced, never followed). A note that cannot be written is a warning on stderr: the
# activation goes on (exit 0), and attest reports the missing note.
set -o errexit -o nounset -o pipefail
shopt -s inherit_errexit

target=${1:-/var/lib/nixos}
dir=${BLANKSLATE_RECORD_DIR:-/run/blankslate}
file=$dir/nixos-bound

warn() {
  printf 'blankslate nixos-bound: warning: %s\n' "$1" >&2
  exit 0
}

[[ $dir == /* ]] || warn "the record directory must be an absolute path"
if [[ -e $file || -L $file ]]; then
  exit 0 # this boot's first activation has noted it
fi
if mountpoint -q -- "$target"; then bound=yes; else bound=no; fi
if [[ ! -e $dir && ! -L $dir ]]; then
  mkdir -m 0755 -- "$dir" || warn "cannot make $dir"
fi
if [[ -L $dir || ! -d $dir ]]; then
  warn "$dir is not a directory (a symlink is not followed)"
fi
owner=$(stat -c '%u %a' -- "$dir") || warn "cannot read $dir"
mode=${owner#* } owner=${owner%% *}
if [[ $owner != "$EUID" ]] || (((8#$mode & 8#022) != 0)); then
  warn "$dir is owned by uid $owner with mode $mode (expected uid $EUID, writable by no one else)"
fi
tmp=$(mktemp "$dir/.nixos-bound.XXXXXXXX") || warn "cannot write in $dir"
if ! printf 'bound=%s\ntime=%s\n' "$bound" "$(date -u +%Y-%m-%dT%H:%M:%SZ)" >"$tmp" ||
  ! chmod 0644 -- "$tmp" || ! mv -f -T -- "$tmp" "$file"; then
  rm -f -- "$tmp"
  warn "cannot write $file"
fi
if [[ $bound == no ]]; then
  echo "blankslate nixos-bound: $target is not a mountpoint before the users' activation" >&2
fi
