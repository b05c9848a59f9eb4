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

log() { printf '%s: %s\n' "$prog" "$*"; }
die() { printf '%s: error: %s\n' "$prog" "$*" >&2; exit 1; }
warn() { printf '%s: warning: %s\n' "$prog" "$*" >&2; }
# names may hold spaces or newlines: quote them so one action stays one journal line
q() { printf '%q' "$1"; }

readonly err_trap='rc=$?; printf "%s: error: line %s: \`%s\` failed (exit %s)\n" "$prog" "$LINENO" "$BASH_COMMAND" "$rc" >&2'
trap "$err_trap" ERR

usage() {
  printf 'usage: %s DEVICE ROOT_SUBVOLUME BLANK_SNAPSHOT OLD_ROOTS_SUBVOLUME KEEP_DAYS KEEP_NEWEST\n' "${0##*/}" >&2
  exit 2
}

# A subvolume name relative to the top level: no leading or trailing '/', no empty, '.' or
# '..' component, no control characters.
check_name() {
  local what=$1 name=$2 part
  [[ -n $name ]] || die "$what is empty"
  [[ $name != /* && $name != */ ]] || die "$what must be relative to the top level, without a leading or trailing '/': $(q "$name")"
  [[ $name != *[[:cntrl:]]* ]] || die "$what contains a control character: $(q "$name")"
  local IFS=/
  for part in $name; do
    [[ -n $part && $part != . && $part != .. ]] || die "$what has an empty, '.' or '..' component: $(q "$name")"
  done
}

# true when $2 is $1 or lies below it
is_within() { [[ $2 == "$1" || $2 == "$1"/* ]]; }

(( $# == 6 )) || usage
device=$1 root=$2 blank=$3 old_roots=$4 keep_days=$5 keep_newest=$6

[[ -b $device ]] || die "DEVICE is not a block device: $(q "$device")"
check_name ROOT_SUBVOLUME "$root"
check_name BLANK_SNAPSHOT "$blank"
check_name OLD_ROOTS_SUBVOLUME "$old_roots"
[[ $keep_days =~ ^[0-9]{1,6}$ ]] || die "KEEP_DAYS must be a non-negative integer (at most 6 digits): $(q "$keep_days")"
keep_days=$((10#$keep_days))
[[ $keep_newest =~ ^[0-9]{1,6}$ ]] || die "KEEP_NEWEST must be a non-negative integer (at most 6 digits): $(q "$keep_newest")"
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

export TZ=UTC0 LC_ALL=C
readonly stamp_format='%Y-%m-%dT%H:%M:%SZ'
# one of our own names, e.g. 2026-11-21T22:50:01Z or 2026-11-21T22:50:01Z.2
readonly stamp_re='^([0-9]{4}-(0[1-9]|1[0-2])-(0[1-9]|[12][0-9]|3[01])T([01][0-9]|2[0-3]):[0-5][0-9]:[0-5][0-9]Z)(\.[1-9][0-9]*)?$'

mnt=$(mktemp -d "${TMPDIR:-/run}/blankslate-rollback.XXXXXXXX")
mounted=
cleanup() {
  local rc=$?
  trap - ERR
  if [[ -n $mounted ]]; then
    umount -- "$mnt" || umount --lazy -- "$mnt" || rc=1
  fi
  rmdir -- "$mnt" || rc=1
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

mount -t btrfs -o subvolid=5 -- "$device" "$mnt"
mounted=1
log "mounted the top level of $(q "$device")"

# A subvolume's root directory is inode 256 (BTRFS_FIRST_FREE_OBJECTID); no other inode of a
# btrfs filesystem has that number.
is_subvolume() { [[ -d $1 && ! -L $1 && $(stat -c %i -- "$1") == 256 ]]; }

is_readonly() {
  local value
  value=$(btrfs property get -ts -- "$1" ro)
  [[ $value == ro=true ]]
}

# Runs "$@" in a subshell with errexit on and stores its exit status in try_rc, without
# stopping this shell: one old root that cannot be deleted must not stop the others, nor the
# boot. (Called as `if f` or `f || ...`, bash would ignore errexit inside f altogether.)
try_rc=0
try() {
  set +o errexit
  trap - ERR
  ( set -o errexit; trap "$err_trap" ERR; "$@" )
  try_rc=$?
  trap "$err_trap" ERR
  set -o errexit
}

# Deletes the subvolume $1 and every subvolume nested in it, at any depth.
# Refuses anything but OLD_ROOTS/<entry> and our own temporary name.
#
# The common case, no nested subvolume, is one `btrfs subvolume delete`: the kernel refuses
# (ENOTEMPTY) when the subvolume still holds others, and only then is the tree walked.
# Nothing here lists the subvolumes of the whole filesystem: `btrfs subvolume list` resolves
# the path of every subvolume, and fails (ENAMETOOLONG) for all as soon as any user creates one
# nested deeper than PATH_MAX; it would also print raw names a directory name could forge.
# The walk is find's (it descends with file descriptors, at any depth): every read-only
# subvolume is made writable (a subvolume inside a read-only one cannot be unlinked), then
# every nested subvolume, deepest first, is renamed from its own directory (-execdir: no long
# path is ever built) to $1/.blankslate-nested.XXXXXXXX/s, a short path the btrfs tool can
# delete (it resolves the real path of what it deletes). Interrupted, the next run's walk
# finds the moved ones again.
readonly nested_prefix=.blankslate-nested.
delete_tree() {
  local top=$1 sub path err
  local rel=${top#"$mnt"/}
  if ! is_within "$old_roots" "$rel" && [[ $rel != "$tmp_name" ]]; then
    die "internal: refusing to delete $(q "$rel")"
  fi
  is_subvolume "$top" || die "internal: not a subvolume: $(q "$rel")"
  if err=$(btrfs subvolume delete -- "$top" 2>&1 >/dev/null); then
    log "deleted $(q "$rel")"
    return 0
  fi
  log "could not delete $(q "$rel") at once ($(q "${err##*: }")): deleting the subvolumes it holds first"
  local -a paths=()
  mapfile -d '' paths < <(find "$top" -type d -inum 256 -execdir bash -c \
    '[[ $(btrfs property get -ts -- "$1" ro) == ro=true ]] && btrfs property set -ts -- "$1" ro false' \
    bash {} \; -printf '%P\0')
  wait "$!" || die "find failed in $(q "$rel")"
  for path in "${paths[@]}"; do
    log "made $(q "$rel${path:+/$path}") writable to delete what it holds"
  done
  mapfile -d '' paths < <(find "$top" -mindepth 1 -depth -type d -inum 256 -execdir bash -c \
    'dir=$(mktemp -d -- "$2/$3XXXXXXXX") && mv -T -- "$1" "$dir/s"' \
    bash {} "$top" "$nested_prefix" \; -printf '%P\0')
  wait "$!" || die "find failed in $(q "$rel")"
  for path in "${paths[@]}"; do
    log "moved nested subvolume $(q "$rel/$path") up to be deleted"
  done
  for sub in "$top/$nested_prefix"*/s; do
    is_subvolume "$sub" || continue
    btrfs subvolume delete -- "$sub" >/dev/null
    log "deleted nested subvolume $(q "${sub#"$mnt"/}")"
  done
  btrfs subvolume delete -- "$top" >/dev/null
  log "deleted $(q "$rel")"
}

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

now=$(date +%s)
stamp=$(date -d "@$now" "+$stamp_format")
cutoff_epoch=$((now - keep_days * 86400))
cutoff=$(date -d "@$cutoff_epoch" "+$stamp_format")

# Sets sub_id and sub_otime (btrfs's creation time, epoch seconds; "-" when unreadable) of
# the subvolume $1, from `btrfs subvolume show`. Its exit status is not used: show ends with
# the snapshots of $1, found by resolving the path of every subvolume on the filesystem, and
# that part fails as soon as a user nests one deeper than PATH_MAX; the fields read here are
# printed before it. An unreadable ID ranks as the newest (kept).
sub_id=0 sub_otime=-
subvolume_times() {
  local out
  local -r id_re=$'\n'[[:space:]]*'Subvolume ID:'[[:space:]]*'([0-9]+)'
  local -r time_re=$'\n'[[:space:]]*'Creation time:'[[:space:]]*'([0-9]{4}-[0-9]{2}-[0-9]{2} [0-9]{2}:[0-9]{2}:[0-9]{2} [-+][0-9]{4})'
  out=$(btrfs subvolume show -- "$1" 2>/dev/null) || true
  sub_id=99999999999999999999 sub_otime=-
  if [[ $out =~ $id_re ]]; then
    sub_id=${BASH_REMATCH[1]}
  fi
  if [[ $out =~ $time_re ]]; then
    sub_otime=$(date -d "${BASH_REMATCH[1]}" +%s) || sub_otime=-
  fi
}

prune_failed=0
# Deletes the expired old roots (see "Pruning" in the header). Never fails: an old root that
# cannot be deleted is reported and kept, and the others are still pruned.
prune() {
  local entry base line id otime newest='' text='' rank=0
  local -a lines=()
  for entry in "$mnt/$old_roots"/*; do
    base=${entry##*/}
    [[ $base =~ $stamp_re ]] || continue
    if [[ ${BASH_REMATCH[1]} > $newest ]]; then
      newest=${BASH_REMATCH[1]}
    fi
    if ! is_subvolume "$entry"; then
      if (( keep_days == 0 )) || [[ ! ${BASH_REMATCH[1]} > $cutoff ]]; then
        log "left $(q "$old_roots/$base") alone: not a subvolume"
      fi
      continue
    fi
    subvolume_times "$entry"
    text+="$sub_id $sub_otime $base"$'\n'
  done
  if [[ $newest > $stamp ]]; then
    warn "the clock looks wrong: it is $stamp, earlier than the newest old root, $(q "$old_roots/$newest"); nothing pruned (if the clock is right, delete that old root by hand)"
    return 0
  fi
  # newest first: btrfs gives each new subvolume a higher ID than every existing one
  mapfile -t lines < <(printf '%s' "$text" | sort -k1,1nr -k3,3r)
  wait "$!"
  for line in "${lines[@]}"; do
    read -r id otime base <<<"$line"
    rank=$((rank + 1))
    (( rank > keep_newest )) || continue
    [[ $base =~ $stamp_re ]]
    if (( keep_days > 0 )); then
      [[ ! ${BASH_REMATCH[1]} > $cutoff ]] || continue
      if [[ $otime == - ]]; then
        warn "cannot read the creation time of $(q "$old_roots/$base"); judged by its name"
      elif (( otime > cutoff_epoch )); then
        log "kept $(q "$old_roots/$base"): named as older than $keep_days days, but created $(date -d "@$otime" "+$stamp_format")"
        continue
      fi
    fi
    try delete_tree "$mnt/$old_roots/$base"
    if (( try_rc != 0 )); then
      warn "could not delete $(q "$old_roots/$base") (exit $try_rc); kept it, pruning goes on"
      prune_failed=1
    fi
  done
}

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
  name=$stamp n=0
  while [[ -e $mnt/$old_roots/$name || -L $mnt/$old_roots/$name ]]; do
    n=$((n + 1))
    name=$stamp.$n
  done
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
