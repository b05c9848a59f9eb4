#!/usr/bin/env bash
# blankslate: reset a btrfs root subvolume to its blank snapshot (run once per boot).
#
#   btrfs-rollback.bash [--prune-budget SECONDS] [--root-quota SIZE]
#                       DEVICE ROOT_SUBVOLUME BLANK_SNAPSHOT OLD_ROOTS_SUBVOLUME KEEP_DAYS KEEP_NEWEST [KEEP_MAX]
#   btrfs-rollback.bash --prune-only DEVICE ROOT_SUBVOLUME BLANK_SNAPSHOT OLD_ROOTS_SUBVOLUME KEEP_DAYS KEEP_NEWEST [KEEP_MAX]
#
# Runs in the systemd initrd as a oneshot unit before sysroot.mount, by the store path of bash
# (in the initrd's storePaths), with coreutils,
# util-linux, btrfs-progs, findutils, grep, sed on PATH); the integration tests run this very
# file against a real btrfs filesystem on a loop device. With --prune-only it resets nothing
# and only does step 7, with the same rules: a stage-2 unit runs it so, after the boot, to
# finish what the initrd's time budget left.
#
# Steps (every name is relative to the filesystem's top level, subvolid=5):
#   1. mount the top level on a private temporary directory (always unmounted on exit);
#   2. refuse to do anything if BLANK_SNAPSHOT is missing;
#   3. delete a leftover ROOT.blankslate-new (our own temporary name, see below);
#   4. create OLD_ROOTS if missing; clear the read-only property of ROOT and OLD_ROOTS if set
#      (logged), or the rename could not happen;
#   5. rename ROOT to OLD_ROOTS/<UTC time of this run> (".N" appended when taken);
#   6. snapshot BLANK_SNAPSHOT to ROOT.blankslate-new, give it the quota of --root-quota
#      (btrfs quotas are enabled if off, simple quotas where the kernel and btrfs-progs
#      have them; see limit_root; a quota that cannot be set is only a warning), then
#      rename it to ROOT;
#   7. prune the expired old roots (below), within --prune-budget SECONDS if given; with
#      --root-quota, start a quota rescan if btrfs says its quota data is inconsistent;
#   8. syncfs, so the new root is on disk before sysroot.mount.
#
# The boot record (./record.bash): every run but --prune-only's writes /run/blankslate/reset
# (BLANKSLATE_RECORD_DIR overrides the directory): `reset` once step 6 put the new root in
# place, with old_root the name step 5 gave the old root (empty when there is none or pruning
# deleted it); else `failed` with the error as the reason, from the EXIT trap, however the
# run ends (a missing blank snapshot, a failed mount or rename, a signal) but SIGKILL. A
# record that cannot be written is a warning and never changes the exit status.
#
# A full filesystem cannot stop the reset. When a rename or the snapshot of steps 5-6 fails
# with ENOSPC (a user filled the filesystem from /tmp), the script gives up, one at a time
# and logged, until the step succeeds: the expired old roots; the old roots beyond the newest
# (keepDays ignored); keeping this root as an old root (it is deleted instead); every old
# root. After each, it waits until btrfs has freed the deleted subvolumes' space, and the
# step is tried again. None of this is bound by the time budget: the reset comes first.
#
# The time budget. A user can nest thousands of subvolumes in /tmp, each costing a delete.
# With --prune-budget, no deletion starts once SECONDS have passed since step 7 began, and
# the walk of an old root's tree is cut short there too (0 prunes nothing); what is left is
# logged and found again by the next run (--prune-only after the boot). Without it, pruning
# is complete.
#
# Pruning. Among the old roots named by step 5 (other entries are never touched):
#   - the KEEP_NEWEST most recently created are kept, whatever their names: btrfs gives each
#     new subvolume a higher ID than all existing ones, so that order needs no clock;
#   - the others are deleted when their name is older than KEEP_DAYS days (0: all of them),
#     unless btrfs's creation time of the subvolume is within those KEEP_DAYS days;
#   - nothing is pruned by age when the clock is earlier than the newest name: the clock looks
#     wrong (a boot at 1970), or an earlier boot's was (at 2099); the warning says which root to
#     delete by hand if the clock is right;
#   - with KEEP_MAX (a positive count), at most KEEP_MAX are kept whatever the clock: the
#     others, lowest subvolume IDs first, are deleted even when the rules above keep them.
#     Without it (6 arguments) there is no such bound.
# An old root that cannot be deleted is reported (stderr) and kept; the others are still
# pruned, and the exit status stays 0: a fresh root is in place. Nothing here depends on a
# listing of every subvolume of the filesystem, which any user can break (see delete_tree).
# Naming, pruning and deleting are ./kept.bash's, shared with the persist snapshots.
#
# Crash safety. btrfs commits whole transactions, so after a crash (SIGKILL, power loss) the
# filesystem shows a prefix of the steps above; a plain re-run completes the job from each:
#   - nothing done / OLD_ROOTS just created or made writable: a normal run;
#   - ROOT renamed away, no new root yet: step 5 has nothing to move, step 6 snapshots;
#   - ROOT deleted by a full filesystem's give-up, no new root yet: as when ROOT was renamed;
#   - ROOT.blankslate-new exists (snapshot made, rename not done): step 3 deletes it, step 6
#     makes it again (a snapshot ioctl is atomic: the name exists complete or not at all);
#   - new ROOT in place (killed while pruning or before the sync): the next run is a whole
#     new cycle; the (empty) root is kept as one more old root, pruning resumes where it was
#     (nested subvolumes already moved up inside an old root are found again).
# ROOT is only ever renamed, never deleted but by a full filesystem's give-up; nothing outside
# OLD_ROOTS is ever deleted except our own temporary name; other subvolumes (persist, nix, log, home ...) are never touched.
#
# Boot cost does not grow with the size of the root: the rename is O(1), and deleting an old
# root walks its tree only when it holds nested subvolumes (see delete_tree), within the
# budget.

set -o nounset -o errexit -o pipefail -o errtrace
shopt -s inherit_errexit nullglob dotglob

readonly prog=blankslate-rollback

# The shared code (naming, pruning, deleting, the top-level mount; the boot record):
# ./kept.bash and ./record.bash, beside this file, or inlined before this text when run with
# `bash -c` (the scripted initrd).
if [[ $(type -t kept_prune) != function || $(type -t record_write) != function ]]; then
  here=${BASH_SOURCE[0]%/*}
  [[ $here != "${BASH_SOURCE[0]}" ]] || here=.
  cannot_load() { printf '%s: error: cannot load %s\n' "$prog" "$here/$1" >&2; exit 1; }
  # shellcheck source=kept.bash
  source -- "$here/kept.bash" || cannot_load kept.bash
  # shellcheck source=record.bash
  source -- "$here/record.bash" || cannot_load record.bash
fi

# The boot record (./record.bash): every run but --prune-only's records its outcome, `reset`
# once the new root is in place (whatever fails after that), else `failed` with the error.
record_kind=btrfs root_created=0
for arg; do
  [[ $arg != --prune-only ]] || record_kind=''
done
kept_at_exit() {
  if ((root_created)); then
    record_write reset ''
  else
    record_at_exit "$1"
  fi
}
trap 'kept_at_exit "$?"' EXIT

usage() {
  record_error="usage: bad arguments"
  printf 'usage: %s [--prune-budget SECONDS] [--prune-only] [--root-quota SIZE] DEVICE ROOT_SUBVOLUME BLANK_SNAPSHOT OLD_ROOTS_SUBVOLUME KEEP_DAYS KEEP_NEWEST [KEEP_MAX]\n' "${0##*/}" >&2
  exit 2
}

budget='' prune_only=0 root_quota=''
while (($#)) && [[ $1 == --* ]]; do
  case $1 in
    --prune-budget)
      (($# >= 2)) || usage
      check_count SECONDS "$2"
      budget=$((10#$2))
      shift 2
      ;;
    --prune-only)
      prune_only=1
      shift
      ;;
    --root-quota)
      (($# >= 2)) || usage
      [[ $2 =~ ^[1-9][0-9]{0,15}[KMGT]?$ ]] || die "SIZE must be a positive number of bytes, with an optional K, M, G or T suffix: $(q "$2")"
      root_quota=$2
      shift 2
      ;;
    --)
      shift
      break
      ;;
    *) usage ;;
  esac
done
(( $# == 6 || $# == 7 )) || usage
device=$1 root=$2 blank=$3 old_roots=$4 keep_days=$5 keep_newest=$6 keep_max=${7-}

[[ -b $device ]] || die "DEVICE is not a block device: $(q "$device")"
check_name ROOT_SUBVOLUME "$root"
check_name BLANK_SNAPSHOT "$blank"
check_name OLD_ROOTS_SUBVOLUME "$old_roots"
check_count KEEP_DAYS "$keep_days"
keep_days=$((10#$keep_days))
check_count KEEP_NEWEST "$keep_newest"
keep_newest=$((10#$keep_newest))
if (($# == 7)); then
  [[ $keep_max =~ ^[0-9]{1,6}$ && $keep_max =~ [1-9] ]] || die "KEEP_MAX must be a positive integer (at most 6 digits): $(q "$keep_max")"
  keep_max=$((10#$keep_max))
fi
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

# Deletes the expired old roots (see "Pruning" in the header). Never fails: an old root that
# cannot be deleted is reported and kept, and the others are still pruned.
prune() { kept_prune btrfs_kept_list rollback_kept_delete btrfs_kept_label; }
# With --root-quota, the level-1 qgroup a root had in simple mode (see limit_root) goes with
# it, when btrfs lets it (best effort: a stale qgroup limits nothing).
rollback_kept_delete() {
  local id=''
  if [[ -n $root_quota ]]; then
    id=$(btrfs inspect-internal rootid "$mnt/$kept_dir/$1" 2>/dev/null) || id=''
  fi
  btrfs_kept_delete "$1"
  if [[ $id =~ ^[0-9]+$ ]]; then
    btrfs qgroup destroy "1/$id" "$mnt" >/dev/null 2>&1 || true
  fi
}

# A qgroup limit holds only while btrfs's quota data is consistent (btrfs-qgroup(8)); when
# `qgroup show` says it is not, a rescan is started (the kernel runs it in the background).
rescan_if_inconsistent() {
  local err
  err=$(btrfs qgroup show "$mnt" 2>&1 >/dev/null) || return 0
  [[ $err == *inconsistent* ]] || return 0
  if err=$(btrfs quota rescan "$mnt" 2>&1 >/dev/null); then
    log "btrfs quota data was inconsistent (the root's quota does not hold then): started a rescan"
  else
    warn "btrfs quota data is inconsistent and no rescan could start ($(q "${err##*: }"))"
  fi
}

if ((prune_only)); then
  if [[ -L $mnt/$old_roots || ! -d $mnt/$old_roots ]]; then
    log "no old roots to prune ($(q "$old_roots") is not a directory)"
    exit 0
  fi
  if is_subvolume "$mnt/$old_roots" && is_readonly "$mnt/$old_roots"; then
    btrfs property set -ts -- "$mnt/$old_roots" ro false
    log "made $(q "$old_roots") writable (it was read-only)"
  fi
  kept_clock
  [[ -z $budget ]] || prune_budget "$budget"
  prune
  [[ -z $root_quota ]] || rescan_if_inconsistent
  sync -f -- "$mnt"
  log "pruned (${prune_deleted} deleted)"
  exit 0
fi

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

# Runs "$@", a step of the reset, its output discarded. full=1 when it failed because the
# filesystem is full (ENOSPC); any other failure is reported and ends the script.
full=0
step() {
  local err
  full=0
  if err=$("$@" 2>&1 >/dev/null); then
    return 0
  fi
  if [[ $err == *"No space left on device"* ]]; then
    if ((give_up_level == 0)); then
      warn "the filesystem is full ($(q "${err##*: }")): giving up, in this order, the expired old roots, the old roots beyond the newest, keeping $(q "$root") as an old root, every old root, until the reset can go on"
    fi
    full=1
    return 0
  fi
  printf '%s\n' "$err" >&2
  die "$(q "$1") failed; $(q "$root") is not reset"
}

# The filesystem is full: gives up the next thing on the list, that frees something, and
# waits until btrfs has freed its space (a deleted subvolume is freed in the background).
# None of this is bounded by the time budget: the reset comes first.
give_up_level=0 this_root='' root_deleted=0
give_up() {
  local prune_deadline='' before
  while true; do
    give_up_level=$((give_up_level + 1))
    before=$prune_deleted
    case $give_up_level in
      1)
        log "giving up the expired old roots"
        prune
        ;;
      2)
        log "giving up the old roots beyond the newest"
        # this run's own old root, if any, is not counted (step 3 decides on it)
        local keep_days=0 keep_newest=1 kept_clock_check=0 kept_skip=''
        [[ $this_root != "$old_roots"/* ]] || kept_skip=${this_root#"$old_roots"/}
        prune
        ;;
      3)
        log "giving up keeping $(q "$root") as an old root"
        if [[ -n $this_root ]] && is_subvolume "$mnt/$this_root"; then
          give_up_root=$this_root
          try delete_tree "$mnt/$this_root"
          give_up_root=''
          if ((try_rc == 0)); then
            prune_deleted=$((prune_deleted + 1))
            record_old_root=''
            [[ $this_root != "$root" ]] || root_deleted=1
          else
            warn "could not delete $(q "$this_root") (exit $try_rc)"
          fi
        fi
        ;;
      4)
        log "giving up every old root"
        local keep_days=0 keep_newest=0 kept_clock_check=0
        prune
        ;;
      *)
        die "the filesystem is full and nothing is left to give up; $(q "$root") is not reset"
        ;;
    esac
    if ((prune_deleted > before)); then
      break
    fi
    log "nothing to give up there"
  done
  btrfs filesystem sync "$mnt" >/dev/null
  btrfs subvolume sync "$mnt" >/dev/null
  btrfs filesystem sync "$mnt" >/dev/null
  log "waited for the space of the deleted subvolumes"
}

# Runs the step "$@" until the filesystem has room for it.
reset_step() {
  step "$@"
  while ((full)); do
    give_up
    step "$@"
  done
}

# Sets the root's quota on the new root (before it takes the root's name: a crash before
# that leaves only our temporary name). A quota that cannot be set does not stop the reset.
#
# Quotas are enabled in simple mode (kernel and btrfs-progs 6.7 or later), else in full mode.
# In simple mode the limit is on a level-1 qgroup, 1/<the new root's ID>, that holds the
# root's own qgroup: a subvolume a user creates inside the root joins it automatically (simple
# quotas' auto hierarchy for nested subvolumes), so it counts against the same limit. Full
# quotas have no such thing: the limit is on the root's own qgroup, and a subvolume made
# inside it is not counted (a warning says so); assigning a qgroup there would make the
# quota data inconsistent, and a limit holds only while it is consistent.
limit_root() {
  local err id
  if ! btrfs qgroup show "$mnt" >/dev/null 2>&1; then
    if btrfs quota enable --simple "$mnt" >/dev/null 2>&1; then
      log "enabled btrfs simple quotas on $(q "$device")"
    elif err=$(btrfs quota enable "$mnt" 2>&1 >/dev/null); then
      log "enabled btrfs quotas on $(q "$device")"
    else
      warn "could not enable btrfs quotas ($(q "${err##*: }")); $(q "$root") has no quota"
      return 0
    fi
  fi
  if [[ $(quota_mode) == squota ]]; then
    if ! id=$(btrfs inspect-internal rootid "$mnt/$tmp_name" 2>&1) || [[ ! $id =~ ^[0-9]+$ ]]; then
      warn "could not limit $(q "$root") to $root_quota ($(q "${id##*: }")); it has no quota"
      return 0
    fi
    # 1/ID may be left by a deleted subvolume that had the same ID
    if ! err=$(btrfs qgroup create "1/$id" "$mnt" 2>&1 >/dev/null) && [[ $err != *"File exists"* ]] ||
      ! err=$(btrfs qgroup assign "0/$id" "1/$id" "$mnt" 2>&1 >/dev/null) ||
      ! err=$(btrfs qgroup limit "$root_quota" "1/$id" "$mnt" 2>&1 >/dev/null); then
      warn "could not limit $(q "$root") to $root_quota ($(q "${err##*: }")); it has no quota"
      return 0
    fi
    log "limited $(q "$root") and the subvolumes made in it to $root_quota (btrfs simple quota, qgroup 1/$id)"
    return 0
  fi
  if ! err=$(btrfs qgroup limit "$root_quota" "$mnt/$tmp_name" 2>&1 >/dev/null); then
    warn "could not limit $(q "$root") to $root_quota ($(q "${err##*: }")); it has no quota"
    return 0
  fi
  log "limited $(q "$root") to $root_quota (btrfs quota)"
  warn "btrfs quotas are in full mode: a subvolume made inside $(q "$root") is not counted in its quota (simple quotas, with kernel and btrfs-progs 6.7 or later, count it)"
}

# The quota mode of the filesystem on $device, from sysfs: squota, qgroup or disabled
# (empty when sysfs does not say).
quota_mode() {
  local dev d
  dev=$(readlink -f -- "$device")
  for d in /sys/fs/btrfs/*/devices/"${dev##*/}"; do
    cat -- "${d%/devices/*}/qgroups/mode" 2>/dev/null || true
    return 0
  done
}

if [[ -e $mnt/$root ]]; then
  kept_new_name btrfs_kept_exists
  name=$kept_name
  this_root=$root
  # -T: rename(2) semantics, never "move into" an existing directory
  step mv -T -- "$mnt/$root" "$mnt/$old_roots/$name"
  while ((full)); do
    give_up
    [[ -e $mnt/$root ]] || break
    step mv -T -- "$mnt/$root" "$mnt/$old_roots/$name"
  done
  if [[ -e $mnt/$root ]]; then
    # still there: the rename failed for another reason, step said it and died
    die "internal: $(q "$root") is still in place"
  fi
  if ((root_deleted)); then
    log "deleted $(q "$root") instead of keeping it (the filesystem is full)"
  else
    this_root=$old_roots/$name
    record_old_root=$name
    log "moved $(q "$root") to $(q "$old_roots/$name")"
  fi
else
  log "no $(q "$root") (an interrupted run moved it already)"
fi

reset_step btrfs subvolume snapshot -- "$mnt/$blank" "$mnt/$tmp_name"
[[ -z $root_quota ]] || limit_root
reset_step mv -T -- "$mnt/$tmp_name" "$mnt/$root"
root_created=1
log "created $(q "$root") from $(q "$blank")"

if [[ -n $budget ]]; then
  prune_budget "$budget"
fi
prune
[[ -z $root_quota ]] || rescan_if_inconsistent
# the record names this boot's old root only while it is there (pruning may delete it)
if [[ -n $record_old_root && ! -e $mnt/$old_roots/$record_old_root ]]; then
  record_old_root=''
fi

sync -f -- "$mnt"
if (( prune_failed )); then
  log "done (some old roots could not be deleted, see above)"
elif ((prune_stopped)); then
  log "done (pruning goes on after the boot)"
else
  log "done"
fi
