#!/usr/bin/env bash
# blankslate: reset a btrfs root subvolume to its blank snapshot (run once per boot).
#
#   btrfs-rollback.bash DEVICE ROOT_SUBVOLUME BLANK_SNAPSHOT OLD_ROOTS_SUBVOLUME KEEP_DAYS KEEP_NEWEST
#
# Runs in the systemd initrd as a oneshot unit before sysroot.mount (bash, coreutils,
# util-linux, btrfs-progs, findutils, grep, sed on PATH); the integration tests run this very
# file against a real btrfs filesystem on a loop device.
#
# Steps (every name is relative to the filesystem's top level, subvolid=5):
#   1. mount the top level on a private temporary directory (always unmounted on exit);
#   2. refuse to do anything if BLANK_SNAPSHOT is missing;
#   3. delete a leftover ROOT.blankslate-new (our own temporary name, see below);
#   4. create OLD_ROOTS if missing; clear the read-only property of ROOT and OLD_ROOTS if set
#      (logged), or the rename could not happen;
#   5. rename ROOT to OLD_ROOTS/<UTC time of this run> (".N" appended when taken);
#   6. snapshot BLANK_SNAPSHOT to ROOT.blankslate-new, then rename it to ROOT;
#   7. prune the expired old roots (below);
#   8. syncfs, so the new root is on disk before sysroot.mount.
# When a rename or the snapshot of steps 5-6 fails because the filesystem is full (ENOSPC),
# step 7 runs first, the script waits until btrfs has freed the deleted roots' space, and the
# step is tried once more.
#
# Pruning. Among the old roots named by step 5 (other entries are never touched):
#   - the KEEP_NEWEST most recently created are kept, whatever their names: btrfs gives each
#     new subvolume a higher ID than all existing ones, so that order needs no clock;
#   - the others are deleted when their name is older than KEEP_DAYS days (0: all of them),
#     unless btrfs's creation time of the subvolume is within those KEEP_DAYS days;
#   - nothing is pruned when the clock is earlier than the newest name: the clock looks wrong
#     (a boot at 1970), or an earlier boot's was (at 2099); the warning says which root to
#     delete by hand if the clock is right.
# An old root that cannot be deleted is reported (stderr) and kept; the others are still
# pruned, and the exit status stays 0: a fresh root is in place. Nothing here depends on a
# listing of every subvolume of the filesystem, which any user can break (see delete_tree).
# Naming, pruning and deleting are ./kept.bash's, shared with the persist snapshots.
#
# Crash safety. btrfs commits whole transactions, so after a crash (SIGKILL, power loss) the
# filesystem shows a prefix of the steps above; a plain re-run completes the job from each:
#   - nothing done / OLD_ROOTS just created or made writable: a normal run;
#   - ROOT renamed away, no new root yet: step 5 has nothing to move, step 6 snapshots;
#   - ROOT.blankslate-new exists (snapshot made, rename not done): step 3 deletes it, step 6
#     makes it again (a snapshot ioctl is atomic: the name exists complete or not at all);
#   - new ROOT in place (killed while pruning or before the sync): the next run is a whole
#     new cycle; the (empty) root is kept as one more old root, pruning resumes where it was
#     (nested subvolumes already moved up inside an old root are found again).
# ROOT is only ever renamed, never deleted; nothing outside OLD_ROOTS is ever deleted except
# our own temporary name; other subvolumes (persist, nix, log, home ...) are never touched.
#
# Boot cost does not grow with the size of the root: the rename is O(1), and deleting an old
# root walks its tree only when it holds nested subvolumes (see delete_tree).

set -o nounset -o errexit -o pipefail -o errtrace
shopt -s nullglob dotglob

readonly prog=blankslate-rollback

# The shared code (naming, pruning, deleting, the top-level mount): ./kept.bash, beside this
# file, or inlined before this text when run with `bash -c` (the scripted initrd).
if [[ $(type -t kept_prune) != function ]]; then
  here=${BASH_SOURCE[0]%/*}
  [[ $here != "${BASH_SOURCE[0]}" ]] || here=.
  source -- "$here/kept.bash" || { printf '%s: error: cannot load %s\n' "$prog" "$here/kept.bash" >&2; exit 1; }
fi

usage() {
  printf 'usage: %s DEVICE ROOT_SUBVOLUME BLANK_SNAPSHOT OLD_ROOTS_SUBVOLUME KEEP_DAYS KEEP_NEWEST\n' "${0##*/}" >&2
  exit 2
}

(( $# == 6 )) || usage
device=$1 root=$2 blank=$3 old_roots=$4 keep_days=$5 keep_newest=$6

[[ -b $device ]] || die "DEVICE is not a block device: $(q "$device")"
check_name ROOT_SUBVOLUME "$root"
check_name BLANK_SNAPSHOT "$blank"
check_name OLD_ROOTS_SUBVOLUME "$old_roots"
check_count KEEP_DAYS "$keep_days"
keep_days=$((10#$keep_days))
check_count KEEP_NEWEST "$keep_newest"
keep_newest=$((10#$keep_newest))
names=("$root" "$blank" "$old_roots")
for a in "${names[@]}"; do
  for b in "${names[@]}"; do
    if [[ $a != "$b" ]] && is_within "$a" "$b"; then
      die "$(q "$b") is within $(q "$a"): ROOT_SUBVOLUME, BLANK_SNAPSHOT and OLD_ROOTS_SUBVOLUME must be distinct and not nested"
    fi
  done
done
if [[ $root == "$blank" || $root == "$old_roots" || $blank == "$old_roots" ]]; then
  die "ROOT_SUBVOLUME, BLANK_SNAPSHOT and OLD_ROOTS_SUBVOLUME must be distinct"
fi

kept_dir=$old_roots
mount_top_level "$device"

if ! is_subvolume "$mnt/$blank"; then
  if [[ -e $mnt/$blank || -L $mnt/$blank ]]; then
    die "blank snapshot $(q "$blank") is not a subvolume; nothing changed"
  fi
  die "blank snapshot $(q "$blank") not found on $(q "$device"); nothing changed"
fi
if [[ -e $mnt/$root || -L $mnt/$root ]] && ! is_subvolume "$mnt/$root"; then
  die "root $(q "$root") exists but is not a subvolume; nothing changed"
fi
if [[ -e $mnt/$old_roots || -L $mnt/$old_roots ]] && { [[ -L $mnt/$old_roots ]] || [[ ! -d $mnt/$old_roots ]]; }; then
  die "old roots $(q "$old_roots") exists but is not a directory; nothing changed"
fi

tmp_name=$root.blankslate-new
if [[ -e $mnt/$tmp_name || -L $mnt/$tmp_name ]]; then
  is_subvolume "$mnt/$tmp_name" || die "$(q "$tmp_name") exists but is not a subvolume (not ours?); nothing changed"
  log "found $(q "$tmp_name") left by an interrupted run"
  delete_tree "$mnt/$tmp_name"
fi

if [[ ! -d $mnt/$old_roots ]]; then
  btrfs subvolume create -- "$mnt/$old_roots" >/dev/null
  log "created subvolume $(q "$old_roots")"
fi

# A read-only ROOT cannot be renamed, nor anything be renamed into a read-only OLD_ROOTS.
for sub in "$root" "$old_roots"; do
  if is_subvolume "$mnt/$sub" && is_readonly "$mnt/$sub"; then
    btrfs property set -ts -- "$mnt/$sub" ro false
    log "made $(q "$sub") writable (it was read-only)"
  fi
done

kept_clock

# Deletes the expired old roots (see "Pruning" in the header). Never fails: an old root that
# cannot be deleted is reported and kept, and the others are still pruned.
prune() { kept_prune btrfs_kept_list btrfs_kept_delete btrfs_kept_label; }

# Runs "$@", a step of the reset, its output discarded. When it fails because the filesystem
# is full, prunes the expired old roots, waits until btrfs has freed their space (a deleted
# subvolume is freed in the background) and runs it once more.
with_space() {
  local err
  if err=$("$@" 2>&1 >/dev/null); then
    return 0
  fi
  if [[ $err != *"No space left on device"* ]]; then
    printf '%s\n' "$err" >&2
    return 1
  fi
  warn "the filesystem is full ($(q "${err##*: }")): pruning the expired old roots, then trying once more"
  prune
  btrfs filesystem sync "$mnt" >/dev/null
  btrfs subvolume sync "$mnt" >/dev/null
  log "waited for the space of the deleted subvolumes"
  "$@" >/dev/null
}

if [[ -e $mnt/$root ]]; then
  kept_new_name btrfs_kept_exists
  name=$kept_name
  # -T: rename(2) semantics, never "move into" an existing directory
  with_space mv -T -- "$mnt/$root" "$mnt/$old_roots/$name"
  log "moved $(q "$root") to $(q "$old_roots/$name")"
else
  log "no $(q "$root") (an interrupted run moved it already)"
fi

with_space btrfs subvolume snapshot -- "$mnt/$blank" "$mnt/$tmp_name"
with_space mv -T -- "$mnt/$tmp_name" "$mnt/$root"
log "created $(q "$root") from $(q "$blank")"

prune

sync -f -- "$mnt"
if (( prune_failed )); then
  log "done (some old roots could not be deleted, see above)"
else
  log "done"
fi
