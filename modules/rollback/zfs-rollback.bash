#!/usr/bin/env bash
# blankslate: roll a ZFS root dataset back to its blank snapshot (run once per boot).
#
#   zfs-rollback.bash DATASET SNAPSHOT
#
# Runs in the systemd initrd after the pool is imported and before sysroot.mount.
# `zfs rollback -r` is a single atomic operation in ZFS: interrupted, the dataset is either
# rolled back or not, and the next boot simply runs it again. It destroys the snapshots taken
# after SNAPSHOT (-r); the dataset's children (e.g. a persist dataset) are not touched.
#
# The outcome goes to the boot record (./record.bash, beside this file or inlined before this
# text in the scripted initrd): `reset` once the rollback is done, else `failed` with the
# error (an EXIT trap records it however the script ends, but SIGKILL). ZFS's rollback makes
# no old root: old_root stays empty.

set -o nounset -o errexit -o pipefail -o errtrace
shopt -s inherit_errexit

readonly prog=blankslate-rollback

if [[ $(type -t record_write) != function ]]; then
  here=${BASH_SOURCE[0]%/*}
  [[ $here != "${BASH_SOURCE[0]}" ]] || here=.
  source -- "$here/record.bash" || { printf '%s: error: cannot load %s\n' "$prog" "$here/record.bash" >&2; exit 1; }
fi
record_kind=zfs
trap 'record_at_exit "$?"' EXIT

log() { printf '%s: %s\n' "$prog" "$*"; }
die() { record_error=$*; printf '%s: error: %s\n' "$prog" "$*" >&2; exit 1; }

trap 'rc=$?; printf -v record_error "line %s: \`%s\` failed (exit %s)" "$LINENO" "$BASH_COMMAND" "$rc"; printf "%s: error: %s\n" "$prog" "$record_error" >&2' ERR

if (( $# != 2 )); then
  record_error="usage: bad arguments"
  printf 'usage: %s DATASET SNAPSHOT\n' "${0##*/}" >&2
  exit 2
fi
dataset=$1 snapshot=$2

# The name rules are scripts/blankslate/rules.json's zfsPoolDataset and zfsSnapshot, the ones
# Nix and `blankslate plan` check; the unit (./zfs.nix) passes them in the environment. Names
# that follow them never start with '-', so they cannot be taken for options.
# pool/a/b: a letter first, no empty component, no '.' or '-' first in one, no '@'
dataset_rule=${BLANKSLATE_ZFS_DATASET_RULE-} snapshot_rule=${BLANKSLATE_ZFS_SNAPSHOT_RULE-}
[[ -n $dataset_rule && -n $snapshot_rule ]] \
  || die "BLANKSLATE_ZFS_DATASET_RULE and BLANKSLATE_ZFS_SNAPSHOT_RULE must hold the name rules (the unit sets them)"
# the whole NAME matches the extended regular expression RULE, byte by byte
follows() { local LC_ALL=C; [[ $2 =~ ^($1)$ ]]; }
follows "$dataset_rule" "$dataset" \
  || die "DATASET is not a dataset name: $(printf '%q' "$dataset")"
follows "$snapshot_rule" "$snapshot" \
  || die "SNAPSHOT is not a snapshot name (the part after '@'): $(printf '%q' "$snapshot")"

target=$dataset@$snapshot
if ! zfs list -H -t snapshot "$target" >/dev/null; then
  die "snapshot $target not found; nothing changed"
fi
log "found snapshot $target"

zfs rollback -r "$target"
log "rolled $dataset back to $target"
record_write reset ''
