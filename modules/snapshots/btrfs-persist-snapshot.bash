#!/usr/bin/env bash
# blankslate: a read-only snapshot of the persist subvolume, and pruning of the older ones.
#
#   btrfs-persist-snapshot.bash DEVICE PERSIST_SUBVOLUME SNAPSHOTS_SUBVOLUME KEEP
#
# Run by the unit blankslate-persist-snapshot (a timer starts it) on the running system, with
# bash, coreutils, util-linux, btrfs-progs and findutils on PATH; the integration tests run
# this very file against a real btrfs filesystem on a loop device.
#
# Steps (every name is relative to the filesystem's top level, subvolid=5):
#   1. mount the top level on a private temporary directory (always unmounted on exit);
#   2. refuse to do anything if PERSIST_SUBVOLUME is not a subvolume;
#   3. create SNAPSHOTS_SUBVOLUME if missing;
#   4. unless KEEP is 0: snapshot PERSIST_SUBVOLUME, read-only, to
#      SNAPSHOTS_SUBVOLUME/<UTC time of this run> (".N" appended when taken);
#   5. prune: keep the KEEP most recently created snapshots (btrfs's subvolume IDs: no clock
#      involved) and delete the others; KEEP 0 deletes them all. Nothing is pruned when the
#      clock is earlier than the newest name (see ../rollback/kept.bash);
#   6. syncfs.
# Naming, pruning and deleting are the rollback's own code, ../rollback/kept.bash.
#
# Crash safety. A snapshot ioctl is atomic: after a crash (SIGKILL, power loss) the snapshot
# of step 4 exists complete, read-only, or not at all; a deletion of step 5 is done or not.
# A plain re-run (the next tick of the timer) takes a new snapshot and prunes what is due.
# Nothing outside SNAPSHOTS_SUBVOLUME is ever deleted, and there only the entries named as
# in step 4; PERSIST_SUBVOLUME is only ever read.

set -o nounset -o errexit -o pipefail -o errtrace
shopt -s inherit_errexit nullglob dotglob

readonly prog=blankslate-persist-snapshot

if [[ $(type -t kept_prune) != function ]]; then
  here=${BASH_SOURCE[0]%/*}
  [[ $here != "${BASH_SOURCE[0]}" ]] || here=.
  source -- "$here/../rollback/kept.bash" || { printf '%s: error: cannot load %s\n' "$prog" "$here/../rollback/kept.bash" >&2; exit 1; }
fi

usage() {
  printf 'usage: %s DEVICE PERSIST_SUBVOLUME SNAPSHOTS_SUBVOLUME KEEP\n' "${0##*/}" >&2
  exit 2
}

(( $# == 4 )) || usage
device=$1 persist=$2 snapshots=$3 keep=$4

[[ -b $device ]] || die "DEVICE is not a block device: $(q "$device")"
check_name PERSIST_SUBVOLUME "$persist"
check_name SNAPSHOTS_SUBVOLUME "$snapshots"
check_count KEEP "$keep"
keep=$((10#$keep))
if is_within "$persist" "$snapshots" || is_within "$snapshots" "$persist"; then
  die "PERSIST_SUBVOLUME and SNAPSHOTS_SUBVOLUME must be distinct and not nested: $(q "$persist"), $(q "$snapshots")"
fi

# pruning by count alone: the KEEP newest are kept, whatever their names say
keep_newest=$keep keep_days=0
kept_dir=$snapshots
mount_top_level "$device"

if ! is_subvolume "$mnt/$persist"; then
  if [[ -e $mnt/$persist || -L $mnt/$persist ]]; then
    die "$(q "$persist") is not a subvolume; nothing changed"
  fi
  die "persist subvolume $(q "$persist") not found on $(q "$device"); nothing changed"
fi
if [[ -L $mnt/$snapshots ]] || { [[ -e $mnt/$snapshots ]] && ! is_subvolume "$mnt/$snapshots"; }; then
  die "snapshots $(q "$snapshots") exists but is not a subvolume; nothing changed"
fi
if [[ ! -e $mnt/$snapshots ]]; then
  btrfs subvolume create -- "$mnt/$snapshots" >/dev/null
  log "created subvolume $(q "$snapshots")"
fi

kept_clock
if (( keep > 0 )); then
  kept_new_name btrfs_kept_exists
  btrfs subvolume snapshot -r -- "$mnt/$persist" "$mnt/$snapshots/$kept_name" >/dev/null
  log "snapshot of $(q "$persist") taken: $(q "$snapshots/$kept_name")"
fi

kept_prune btrfs_kept_list btrfs_kept_delete btrfs_kept_label

sync -f -- "$mnt"
if (( prune_failed )); then
  log "done (some snapshots could not be deleted, see above)"
  exit 1
fi
log "done"
