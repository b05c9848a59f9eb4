# shellcheck shell=bash disable=SC2154 # disko and the lines before this file set the inputs
# disko postCreateHook of the btrfs filesystem (modules/disko/devices.nix and
# `blankslate disko` put it there): the read-only blank snapshot of the still
# empty root subvolume, as `blankslate install` makes it.
# In: $device (set by disko for the hook), $blankslate_root and
# $blankslate_blank (subvolume names, set by the lines before this file).
# Idempotent: an existing blank is kept; a root that holds anything is
# refused, since a blank taken from it would bring its files back at every boot.
(
  set -o nounset -o errexit -o pipefail
  shopt -s inherit_errexit
  top=$(mktemp -d)
  mount "$device" "$top" -o subvol=/
  trap 'umount "$top"; rmdir "$top"' EXIT
  if btrfs subvolume show "$top/$blankslate_blank" >/dev/null 2>&1; then
    echo "blankslate: blank snapshot $blankslate_blank exists; kept"
  elif [ -n "$(ls -A "$top/$blankslate_root")" ]; then
    echo "blankslate: subvolume $blankslate_root is not empty; no blank snapshot made from it" >&2
    exit 1
  else
    btrfs subvolume snapshot -r "$top/$blankslate_root" "$top/$blankslate_blank"
  fi
)
