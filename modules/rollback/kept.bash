# shellcheck shell=bash disable=SC2034,SC2154
# (A library: its callers set the variables it reads and read those it sets.)
# blankslate: what the rollback and the persist snapshots share. Sourced, never run:
#   btrfs-rollback.bash                     (old roots of /, at boot)
#   ../snapshots/btrfs-persist-snapshot.bash, ../snapshots/zfs-persist-snapshot.bash
#                                           (read-only snapshots of persistPath, on a timer)
# A script that runs inline (`bash -c`, the scripted initrd) gets this text before its own.
#
# The caller sets `prog` (the journal's tag) before sourcing; sourcing sets TZ and LC_ALL and
# the ERR trap.
#
# Kept copies are named by the UTC time they were made, %Y-%m-%dT%H:%M:%SZ, after a prefix
# (`kept_prefix`, empty for btrfs, where they have a directory of their own), with ".N"
# appended when the name is taken (`kept_new_name`). `kept_prune` deletes the expired ones:
#   - the `keep_newest` most recently created are kept, whatever their names: creation order
#     (btrfs's subvolume ID, ZFS's createtxg) grows with every new one and needs no clock;
#   - the others are deleted when their name is older than `keep_days` days (0: all of them),
#     unless their creation time (btrfs's otime, ZFS's creation) is within those days;
#   - nothing is pruned when the clock is earlier than the newest name: the clock looks
#     wrong (a boot at 1970), or an earlier run's was (at 2099); the warning says which
#     copy to delete by hand if the clock is right.
# With `keep_max` set (a positive count; empty: no cap), at most that many are kept: the
# others, oldest by creation order, are deleted whatever their names, their creation times
# or the clock say (a machine without a hardware clock boots in 1970, behind every name).
# A copy that cannot be deleted is reported (stderr) and kept, the others are still pruned,
# and `prune_failed` is set. `prune_deleted` counts the copies deleted.
#
# A time budget (`prune_budget SECONDS`, none by default) bounds the pruning: no deletion
# starts once it is used up, and a DELETE that stops at it exits 75 (it may resume later);
# `kept_prune` then stops, sets `prune_stopped` and says how many expired copies are left.
# Budget 0 prunes nothing. The budget counts on the boot's uptime, which no clock change moves.

# The ERR trap and die also keep their message in record_error, the reason a rollback's boot
# record gives (./record.bash).
# shellcheck disable=SC2016 # expanded when the trap runs
readonly err_trap='rc=$?; printf -v record_error "line %s: \`%s\` failed (exit %s)" "$LINENO" "$BASH_COMMAND" "$rc"; printf "%s: error: %s\n" "$prog" "$record_error" >&2'
# shellcheck disable=SC2064 # the trap's text is $err_trap's, fixed above
trap "$err_trap" ERR
export TZ=UTC0 LC_ALL=C

log() { printf '%s: %s\n' "$prog" "$*"; }
die() { record_error=$*; printf '%s: error: %s\n' "$prog" "$*" >&2; exit 1; }
warn() { printf '%s: warning: %s\n' "$prog" "$*" >&2; }
# names may hold spaces or newlines: quote them so one action stays one journal line
q() { printf '%q' "$1"; }

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

# A count or a number of days: a non-negative integer of at most 6 digits.
check_count() {
  [[ $2 =~ ^[0-9]{1,6}$ ]] || die "$1 must be a non-negative integer (at most 6 digits): $(q "$2")"
}

# true when $2 is $1 or lies below it
is_within() { [[ $2 == "$1" || $2 == "$1"/* ]]; }

# Runs "$@" in a subshell with errexit on and stores its exit status in try_rc, without
# stopping this shell: one copy that cannot be deleted must not stop the others, nor the
# boot. (Called as `if f` or `f || ...`, bash would ignore errexit inside f altogether.)
try_rc=0
try() {
  set +o errexit
  trap - ERR
  # shellcheck disable=SC2064 # the trap's text is $err_trap's, fixed above
  ( set -o errexit; trap "$err_trap" ERR; "$@" )
  try_rc=$?
  # shellcheck disable=SC2064 # the trap's text is $err_trap's, fixed above
  trap "$err_trap" ERR
  set -o errexit
}

# ---------------------------------------------------------------- names and the clock

readonly stamp_format='%Y-%m-%dT%H:%M:%SZ'
readonly stamp_pattern='([0-9]{4}-(0[1-9]|1[0-2])-(0[1-9]|[12][0-9]|3[01])T([01][0-9]|2[0-3]):[0-5][0-9]:[0-5][0-9]Z)(\.[1-9][0-9]*)?'
kept_prefix=

# true when $1 is one of our names, e.g. 2026-11-21T22:50:01Z or 2026-11-21T22:50:01Z.2
# (after kept_prefix); BASH_REMATCH[1] is then its time
is_kept_name() {
  local -r re="^${kept_prefix}${stamp_pattern}\$"
  [[ $1 =~ $re ]]
}

# Reads the clock once: now (epoch), stamp (its name), and the pruning cutoff of keep_days.
kept_clock() {
  now=$(date +%s)
  stamp=$(date -d "@$now" "+$stamp_format")
  cutoff_epoch=$((now - keep_days * 86400))
  cutoff=$(date -d "@$cutoff_epoch" "+$stamp_format")
}

# Sets kept_name to prefix+stamp, or prefix+stamp.N when the predicate "$1 NAME" says taken.
kept_new_name() {
  local exists=$1 n=0
  kept_name=$kept_prefix$stamp
  while "$exists" "$kept_name"; do
    n=$((n + 1))
    kept_name=$kept_prefix$stamp.$n
  done
}

# ---------------------------------------------------------------- the time budget

# prune_deadline: centiseconds of uptime (/proc/uptime, CLOCK_BOOTTIME) when the budget is
# used up; empty: no budget.
prune_deadline=
uptime_cs() {
  local up rest
  read -r up rest </proc/uptime
  uptime_cs=$((10#${up%.*} * 100 + 10#${up#*.}))
}
prune_budget() {
  uptime_cs
  prune_deadline=$((uptime_cs + $1 * 100))
}
# True while the budget lasts (always without one); budget_left: the centiseconds left.
within_budget() {
  [[ -n $prune_deadline ]] || return 0
  uptime_cs
  budget_left=$((prune_deadline - uptime_cs))
  ((budget_left > 0))
}

# ---------------------------------------------------------------- pruning

# kept_prune LIST DELETE LABEL
#   LIST: a function that sets kept_stamps (the time part of every name of ours, deletable
#         or not) and kept_text, one "ORDER OTIME NAME" line per deletable copy (ORDER: the
#         creation order; OTIME: creation time in epoch seconds, or "-" when unreadable);
#   DELETE NAME: deletes one copy, run under `try`;
#   LABEL NAME: prints how messages name a copy ("old_roots/NAME", "pool/persist@NAME").
# Uses keep_newest, keep_days, stamp, cutoff and cutoff_epoch (kept_clock). Never fails.
# With kept_clock_check=0 (keep_days 0 only), a clock earlier than the newest name does not
# stop the pruning: the count alone decides, and it needs no clock.
prune_failed=0 prune_deleted=0 prune_stopped=0 kept_clock_check=1 keep_max=
kept_prune() {
  local list=$1 delete=$2 label=$3 time newest='' line otime base rank=0 i clock_ok=1
  local -a lines=() doomed=()
  kept_stamps=() kept_text=''
  "$list"
  for time in "${kept_stamps[@]}"; do
    if [[ $time > $newest ]]; then
      newest=$time
    fi
  done
  if ((kept_clock_check || keep_days > 0)) && [[ $newest > $stamp ]]; then
    if [[ -z $keep_max ]]; then
      warn "the clock looks wrong: it is $stamp, earlier than the newest of them, $(q "$("$label" "$kept_prefix$newest")"); nothing pruned (if the clock is right, delete that one by hand)"
      return 0
    fi
    warn "the clock looks wrong: it is $stamp, earlier than the newest of them, $(q "$("$label" "$kept_prefix$newest")"); nothing pruned by age, only beyond the $keep_max newest (if the clock is right, delete that one by hand)"
    clock_ok=0
  fi
  # newest first: the creation order, then the name
  mapfile -t lines < <(printf '%s' "$kept_text" | sort -k1,1nr -k3,3r)
  wait "$!"
  for line in "${lines[@]}"; do
    read -r _ otime base <<<"$line"
    rank=$((rank + 1))
    if [[ -n $keep_max ]] && ((rank > keep_max)); then
      log "$(q "$("$label" "$base")") is beyond the $keep_max newest (KEEP_MAX): deleting it"
      doomed+=("$base")
      continue
    fi
    ((clock_ok)) || continue
    (( rank > keep_newest )) || continue
    is_kept_name "$base"
    if (( keep_days > 0 )); then
      [[ ! ${BASH_REMATCH[1]} > $cutoff ]] || continue
      if [[ $otime == - ]]; then
        warn "cannot read the creation time of $(q "$("$label" "$base")"); judged by its name"
      elif (( otime > cutoff_epoch )); then
        log "kept $(q "$("$label" "$base")"): named as older than $keep_days days, but created $(date -d "@$otime" "+$stamp_format")"
        continue
      fi
    fi
    doomed+=("$base")
  done
  for i in "${!doomed[@]}"; do
    base=${doomed[i]}
    try_rc=75
    if within_budget; then
      try "$delete" "$base"
    fi
    if ((try_rc == 75)); then
      prune_stopped=1
      log "pruning stopped: its time budget is used up; $((${#doomed[@]} - i)) expired left for later"
      return 0
    fi
    if ((try_rc != 0)); then
      warn "could not delete $(q "$("$label" "$base")") (exit $try_rc); kept it, pruning goes on"
      prune_failed=1
    else
      prune_deleted=$((prune_deleted + 1))
    fi
  done
}

# ---------------------------------------------------------------- btrfs

# The top level (subvolid=5) of DEVICE on a private temporary directory, $mnt, unmounted
# (and the directory removed) when the script exits, however it ends but SIGKILL.
mounted=
mount_top_level() {
  local device=$1
  mnt=$(mktemp -d "${TMPDIR:-/run}/$prog.XXXXXXXX")
  trap cleanup EXIT
  trap 'exit 130' INT
  trap 'exit 143' TERM
  mount -t btrfs -o subvolid=5 -- "$device" "$mnt"
  mounted=1
  log "mounted the top level of $(q "$device")"
}
cleanup() {
  local rc=$?
  trap - ERR
  if [[ -n $mounted ]]; then
    # -l, not --lazy: the scripted initrd's umount is busybox's, which has only -l
    umount -- "$mnt" || umount -l -- "$mnt" || rc=1
  fi
  rmdir -- "$mnt" || rc=1
  # the rollback's boot record (./record.bash), when the caller keeps one
  if [[ $(type -t kept_at_exit) == function ]]; then
    kept_at_exit "$rc"
  fi
  exit "$rc"
}

# A subvolume's root directory is inode 256 (BTRFS_FIRST_FREE_OBJECTID); no other inode of a
# btrfs filesystem has that number.
is_subvolume() { [[ -d $1 && ! -L $1 && $(stat -c %i -- "$1") == 256 ]]; }

is_readonly() {
  local value
  value=$(btrfs property get -ts -- "$1" ro)
  [[ $value == ro=true ]]
}

# Deletes the subvolume $1 and every subvolume nested in it, at any depth.
# Refuses anything but $kept_dir/<entry>, the caller's own temporary name, $tmp_name, and
# $give_up_root (the rollback's root, when a full filesystem leaves no other way).
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
# delete (it resolves the real path of what it deletes). Interrupted, the next run deletes
# the moved ones first, and its walk finds the others again.
#
# Under a time budget (see within_budget) the walks run under `timeout` and each deletion
# starts only while the budget lasts; once it is used up, this logs how far it got and exits
# 75 (run it under `try`): what is left is the next run's.
readonly nested_prefix=.blankslate-nested.
tmp_name='' give_up_root=''
delete_tree() {
  local top=$1 sub path err rc
  local rel=${top#"$mnt"/}
  if ! is_within "$kept_dir" "$rel" && [[ -z $tmp_name || $rel != "$tmp_name" ]] &&
    [[ -z $give_up_root || $rel != "$give_up_root" ]]; then
    die "internal: refusing to delete $(q "$rel")"
  fi
  is_subvolume "$top" || die "internal: not a subvolume: $(q "$rel")"
  if err=$(btrfs subvolume delete -- "$top" 2>&1 >/dev/null); then
    log "deleted $(q "$rel")"
    return 0
  fi
  log "could not delete $(q "$rel") at once ($(q "${err##*: }")): deleting the subvolumes it holds first"
  delete_moved_up "$top" lenient
  local -a paths=() walk=()
  # shellcheck disable=SC2016 # the inner bash expands it
  budgeted_walk "$top" -type d -inum 256 -execdir bash -c \
    '[[ $(btrfs property get -ts -- "$1" ro) == ro=true ]] && btrfs property set -ts -- "$1" ro false' \
    bash {} \; -printf '%P\0'
  mapfile -d '' paths < <("${walk[@]}" || exit "$?")
  rc=0
  wait "$!" || rc=$?
  for path in "${paths[@]}"; do
    log "made $(q "$rel${path:+/$path}") writable to delete what it holds"
  done
  walk_done "$rel" "$rc"
  # On a full filesystem mktemp or mv may fail (ENOSPC) where a delete still works (btrfs
  # deletes from its global reserve): the subvolume is then deleted where it is, which
  # works unless it lies deeper than PATH_MAX.
  # shellcheck disable=SC2016 # the inner bash expands it
  budgeted_walk "$top" -mindepth 1 -depth -type d -inum 256 -execdir bash -c \
    'if dir=$(mktemp -d -- "$2/$3XXXXXXXX" 2>/dev/null) && mv -T -- "$1" "$dir/s" 2>/dev/null; then
       printf "moved\0"
     else
       [[ -z ${dir-} ]] || rmdir -- "$dir" 2>/dev/null || true
       btrfs subvolume delete -- "$1" >/dev/null && printf "deleted\0"
     fi' \
    bash {} "$top" "$nested_prefix" \; -printf '%P\0'
  mapfile -d '' paths < <("${walk[@]}" || exit "$?")
  rc=0
  wait "$!" || rc=$?
  local i
  for ((i = 0; i + 1 < ${#paths[@]}; i += 2)); do
    if [[ ${paths[i]} == moved ]]; then
      log "moved nested subvolume $(q "$rel/${paths[i + 1]}") up to be deleted"
    else
      log "deleted nested subvolume $(q "$rel/${paths[i + 1]}") where it was"
    fi
  done
  walk_done "$rel" "$rc"
  delete_moved_up "$top"
  budget_check "$rel"
  btrfs subvolume delete -- "$top" >/dev/null
  log "deleted $(q "$rel")"
}
# walk: find "$@" (its top first), under `timeout` for what is left of a budget. It runs as
# `"${walk[@]}" || exit "$?"`: its status goes to walk_done, not to the ERR trap.
budgeted_walk() {
  walk=(find "$@")
  [[ -n $prune_deadline ]] || return 0
  budget_check "${1#"$mnt"/}"
  # whole seconds, rounded up: busybox's timeout (the scripted initrd's) takes no fraction
  walk=(timeout -s TERM "$(((budget_left + 99) / 100))" "${walk[@]}")
}
# After a walk of $1 that ended with status $2: 124 is timeout's, the budget used up.
walk_done() {
  if [[ -n $prune_deadline ]] && (($2 == 124)); then
    log "stopped deleting $(q "$1"): the time budget is used up"
    exit 75
  fi
  (($2 == 0)) || die "find failed in $(q "$1")"
}
budget_check() {
  if ! within_budget; then
    log "stopped deleting $(q "$1"): the time budget is used up"
    exit 75
  fi
}
# Deletes the nested subvolumes a walk of $1 moved up (this run's or an interrupted one's).
# With $2 = lenient (before the walk), one that cannot be deleted yet (it still holds a
# subvolume that an earlier walk failed to move) is left to the walk.
delete_moved_up() {
  local sub
  for sub in "$1/$nested_prefix"*/s; do
    is_subvolume "$sub" || continue
    budget_check "${1#"$mnt"/}"
    if [[ ${2-} == lenient ]]; then
      btrfs subvolume delete -- "$sub" >/dev/null 2>&1 || continue
    else
      btrfs subvolume delete -- "$sub" >/dev/null
    fi
    log "deleted nested subvolume $(q "${sub#"$mnt"/}")"
  done
}

# Sets sub_id and sub_otime (btrfs's creation time, epoch seconds; "-" when unreadable) of
# the subvolume $1, from `btrfs subvolume show`. Its exit status is not used: show ends with
# the snapshots of $1, found by resolving the path of every subvolume on the filesystem, and
# that part fails as soon as a user nests one deeper than PATH_MAX; the fields read here are
# printed before it. An unreadable ID ranks as the newest (kept).
sub_id=0 sub_otime=-
subvolume_times() {
  local out
  local -r id_re=$'\n''[[:space:]]*Subvolume ID:[[:space:]]*([0-9]+)'
  local -r time_re=$'\n''[[:space:]]*Creation time:[[:space:]]*([0-9]{4}-[0-9]{2}-[0-9]{2} [0-9]{2}:[0-9]{2}:[0-9]{2} [-+][0-9]{4})'
  out=$(btrfs subvolume show -- "$1" 2>/dev/null) || true
  sub_id=99999999999999999999 sub_otime=-
  if [[ $out =~ $id_re ]]; then
    sub_id=${BASH_REMATCH[1]}
  fi
  if [[ $out =~ $time_re ]]; then
    sub_otime=$(date -d "${BASH_REMATCH[1]}" +%s) || sub_otime=-
  fi
}

# The kept copies of a btrfs filesystem: the subvolumes named by us in $mnt/$kept_dir (other
# entries are never touched), but $kept_skip. LIST, DELETE and LABEL of kept_prune.
kept_skip=
btrfs_kept_list() {
  local entry base
  for entry in "$mnt/$kept_dir"/*; do
    base=${entry##*/}
    is_kept_name "$base" || continue
    [[ -z $kept_skip || $base != "$kept_skip" ]] || continue
    kept_stamps+=("${BASH_REMATCH[1]}")
    if ! is_subvolume "$entry"; then
      if (( keep_days == 0 )) || [[ ! ${BASH_REMATCH[1]} > $cutoff ]]; then
        log "left $(q "$kept_dir/$base") alone: not a subvolume"
      fi
      continue
    fi
    subvolume_times "$entry"
    kept_text+="$sub_id $sub_otime $base"$'\n'
  done
}
btrfs_kept_delete() { delete_tree "$mnt/$kept_dir/$1"; }
btrfs_kept_label() { printf '%s/%s' "$kept_dir" "$1"; }
btrfs_kept_exists() { [[ -e $mnt/$kept_dir/$1 || -L $mnt/$kept_dir/$1 ]]; }
