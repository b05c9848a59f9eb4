#!/usr/bin/env bash
# blankslate: reset a btrfs root subvolume to its blank snapshot (run once per boot).
#
#   btrfs-rollback.bash DEVICE ROOT_SUBVOLUME BLANK_SNAPSHOT OLD_ROOTS_SUBVOLUME KEEP_DAYS
#
# Runs in the systemd initrd as a oneshot unit before sysroot.mount (bash, coreutils,
# util-linux, btrfs-progs, findutils, grep, sed on PATH); the integration tests run this very
# file against a real btrfs filesystem on a loop device.
#
# Steps (every name is relative to the filesystem's top level, subvolid=5):
#   1. mount the top level on a private temporary directory (always unmounted on exit);
#   2. refuse to do anything if BLANK_SNAPSHOT is missing;
#   3. delete a leftover ROOT.blankslate-new (our own temporary name, see below);
#   4. create OLD_ROOTS if missing;
#   5. rename ROOT to OLD_ROOTS/<UTC time of this run> (".N" appended when taken);
#   6. snapshot BLANK_SNAPSHOT to ROOT.blankslate-new, then rename it to ROOT;
#   7. prune the old roots whose name is older than KEEP_DAYS days (0: all of them);
#   8. syncfs, so the new root is on disk before sysroot.mount.
#
# Crash safety. btrfs commits whole transactions, so after a crash (SIGKILL, power loss) the
# filesystem shows a prefix of the steps above; a plain re-run completes the job from each:
#   - nothing done / OLD_ROOTS just created: a normal run;
#   - ROOT renamed away, no new root yet: step 5 has nothing to move, step 6 snapshots;
#   - ROOT.blankslate-new exists (snapshot made, rename not done): step 3 deletes it, step 6
#     makes it again (a snapshot ioctl is atomic: the name exists complete or not at all);
#   - new ROOT in place (killed while pruning or before the sync): the next run is a whole
#     new cycle; the (empty) root is kept as one more old root, pruning resumes where it was.
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
# names may hold spaces or newlines: quote them so one action stays one journal line
q() { printf '%q' "$1"; }

trap 'rc=$?; printf "%s: error: line %s: \`%s\` failed (exit %s)\n" "$prog" "$LINENO" "$BASH_COMMAND" "$rc" >&2' ERR

usage() {
  printf 'usage: %s DEVICE ROOT_SUBVOLUME BLANK_SNAPSHOT OLD_ROOTS_SUBVOLUME KEEP_DAYS\n' "${0##*/}" >&2
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

(( $# == 5 )) || usage
device=$1 root=$2 blank=$3 old_roots=$4 keep_days=$5

[[ -b $device ]] || die "DEVICE is not a block device: $(q "$device")"
check_name ROOT_SUBVOLUME "$root"
check_name BLANK_SNAPSHOT "$blank"
check_name OLD_ROOTS_SUBVOLUME "$old_roots"
[[ $keep_days =~ ^[0-9]{1,6}$ ]] || die "KEEP_DAYS must be a non-negative integer (at most 6 digits): $(q "$keep_days")"
keep_days=$((10#$keep_days))
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

# Deletes the subvolume $1 and every subvolume nested in it, deepest first.
# Refuses anything but OLD_ROOTS/<entry> and our own temporary name.
#
# Why not `btrfs subvolume list`: it prints one line per subvolume with the raw path, so a
# directory named "x<newline>ID 258 ... path persist" inside a root could forge a line and get
# another subvolume deleted. `find -print0` cannot be fooled. But find walks the whole tree,
# so it only runs when `btrfs subvolume list -o` (root tree metadata, cheap) says the
# subvolume has children at all: that answer (empty or not) holds whatever the names are.
# With -depth find prints a directory's contents before the directory: deepest first.
delete_tree() {
  local top=$1 sub
  local rel=${top#"$mnt"/}
  if ! is_within "$old_roots" "$rel" && [[ $rel != "$tmp_name" ]]; then
    die "internal: refusing to delete $(q "$rel")"
  fi
  is_subvolume "$top" || die "internal: not a subvolume: $(q "$rel")"
  local children
  children=$(btrfs subvolume list -o -- "$top")
  if [[ -n $children ]]; then
    local -a subs=()
    mapfile -d '' subs < <(find "$top" -mindepth 1 -depth -type d -inum 256 -print0)
    wait "$!" || die "find failed in $(q "$rel")"
    # a subvolume whose parent is read-only cannot be unlinked: make all of them writable
    for sub in "$top" "${subs[@]}"; do
      if is_readonly "$sub"; then
        btrfs property set -ts "$sub" ro false
        log "made $(q "${sub#"$mnt"/}") writable to delete what it holds"
      fi
    done
    for sub in "${subs[@]}"; do
      btrfs subvolume delete -- "$sub" >/dev/null
      log "deleted nested subvolume $(q "${sub#"$mnt"/}")"
    done
  fi
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

now=$(date +%s)
stamp=$(date -d "@$now" "+$stamp_format")

if [[ -e $mnt/$root ]]; then
  name=$stamp n=0
  while [[ -e $mnt/$old_roots/$name || -L $mnt/$old_roots/$name ]]; do
    n=$((n + 1))
    name=$stamp.$n
  done
  # -T: rename(2) semantics, never "move into" an existing directory
  mv -T -- "$mnt/$root" "$mnt/$old_roots/$name"
  log "moved $(q "$root") to $(q "$old_roots/$name")"
else
  log "no $(q "$root") (an interrupted run moved it already)"
fi

btrfs subvolume snapshot -- "$mnt/$blank" "$mnt/$tmp_name" >/dev/null
mv -T -- "$mnt/$tmp_name" "$mnt/$root"
log "created $(q "$root") from $(q "$blank")"

# Prune by name, not by mtime: names are the UTC time of the rollback that made them, and the
# fixed-width format sorts like time, so a string comparison with the cutoff's name decides.
cutoff=$(date -d "@$((now - keep_days * 86400))" "+$stamp_format")
for entry in "$mnt/$old_roots"/*; do
  base=${entry##*/}
  [[ $base =~ $stamp_re ]] || continue
  if (( keep_days > 0 )) && [[ ${BASH_REMATCH[1]} > $cutoff ]]; then
    continue
  fi
  if ! is_subvolume "$entry"; then
    log "left $(q "$old_roots/$base") alone: not a subvolume"
    continue
  fi
  delete_tree "$entry"
done

sync -f -- "$mnt"
log "done"
