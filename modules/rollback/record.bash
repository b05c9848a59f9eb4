# shellcheck shell=bash disable=SC2154 # the caller sets prog (the journal's tag)
# blankslate: the boot record, what this boot's rollback did. Sourced, never run, by
#   btrfs-rollback.bash, zfs-rollback.bash   (kind btrfs, zfs)
#   record-root.bash                         (kind tmpfs, none)
# A script that runs inline (`bash -c`, the scripted initrd) gets this text before its own.
#
# The record is the file $BLANKSLATE_RECORD_DIR/reset (default /run/blankslate/reset), read
# in stage 2 by `blankslate attest` and doctor. /run survives the switch to stage 2: systemd's
# switch-root moves /run to the new root, and nixpkgs' scripted stage 1
# (nixos/modules/system/boot/stage-1-init.sh) does `mount --move /run $targetRoot/run` before
# it execs stage 2. UTF-8 lines `key=value`, exactly these keys, in this order:
#   kind=btrfs|zfs|tmpfs|none
#   outcome=reset|failed|skipped
#   reason=<one line; empty when outcome=reset>
#   old_root=<the old root this boot made (btrfs: its name under OLD_ROOTS), empty if none>
#   time=<UTC, %Y-%m-%dT%H:%M:%SZ>
# Control characters in a reason are written as spaces, so each value stays one line.
#
# Writing: the directory is made 0755 when missing; it must be a directory (not a symbolic
# link) owned by this user and writable by no one else, or nothing is written. The file is a
# new temporary file (mktemp: O_EXCL, never an existing name) made 0644, then renamed onto
# `reset`: rename replaces a symbolic link planted there, it never follows it. A record that
# cannot be written is a warning (stderr) and never changes the script's exit status.
#
# The caller sets `prog` and `record_kind` (empty: write nothing, e.g. --prune-only), sets
# `record_old_root` once it has one, calls `record_write reset ''` on success, and calls
# `record_at_exit STATUS` from its EXIT trap: a run that ends without a record written
# records `failed`, with `record_error` (set by die and by the ERR trap) as its reason.

record_kind='' record_old_root='' record_written=0 record_error=''

# record_write OUTCOME REASON: writes the record once (a second call does nothing).
record_write() {
  local outcome=$1 reason=${2-} now err
  ((record_written == 0)) || return 0
  record_written=1
  [[ -n $record_kind ]] || return 0
  reason=${reason//[[:cntrl:]]/ }
  now=$(date -u +%Y-%m-%dT%H:%M:%SZ 2>/dev/null) || now=''
  if ! err=$(record_write_file "$outcome" "$reason" "${record_old_root//[[:cntrl:]]/ }" "$now" 2>&1); then
    printf '%s: warning: could not record the outcome (%s) in %q: %s\n' \
      "$prog" "$outcome" "${BLANKSLATE_RECORD_DIR:-/run/blankslate}/reset" "${err//[[:cntrl:]]/ }" >&2
  fi
  return 0
}

# Runs in a command substitution (a subshell): no errexit, no ERR trap; prints why it failed.
record_write_file() {
  set +o errexit
  trap - ERR
  local dir=${BLANKSLATE_RECORD_DIR:-/run/blankslate} tmp owner mode
  if [[ $dir != /* ]]; then
    printf 'the record directory must be an absolute path'
    return 1
  fi
  if [[ ! -e $dir && ! -L $dir ]]; then
    mkdir -m 0755 "$dir" || return 1
  fi
  if [[ -L $dir || ! -d $dir ]]; then
    printf '%q is not a directory (a symbolic link is not followed)' "$dir"
    return 1
  fi
  # a command substitution, not `< <(...)`: stat has ended before anything else runs
  owner=$(stat -c '%u %a' -- "$dir") || return 1
  mode=${owner#* } owner=${owner%% *}
  if [[ $owner != "$EUID" ]] || (((8#$mode & 8#022) != 0)); then
    printf '%q is owned by uid %s with mode %s (expected uid %s, writable by no one else)' \
      "$dir" "$owner" "$mode" "$EUID"
    return 1
  fi
  tmp=$(mktemp "$dir/.reset.XXXXXXXX") || return 1
  if ! printf 'kind=%s\noutcome=%s\nreason=%s\nold_root=%s\ntime=%s\n' \
    "$record_kind" "$1" "$2" "$3" "$4" >"$tmp" ||
    ! chmod 0644 "$tmp" || ! mv -f -T "$tmp" "$dir/reset"; then
    rm -f "$tmp"
    return 1
  fi
}

# record_at_exit STATUS: from the EXIT trap; records `failed` unless a record was written.
record_at_exit() {
  local rc=$1 reason=$record_error
  ((record_written == 0)) || return 0
  if [[ -z $reason ]]; then
    reason="ended with exit status $rc before the reset was done"
  fi
  record_write failed "$reason"
}
