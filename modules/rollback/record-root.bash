#!/usr/bin/env bash
# blankslate: the boot record of the rollback kinds that run no reset of their own.
#
#   record-root.bash tmpfs ROOT     (ROOT: where the initrd mounted /, e.g. /sysroot)
#   record-root.bash none
#
# tmpfs: / is a new tmpfs at every boot, empty by construction. Run in the initrd once / is
# mounted (systemd initrd: a oneshot unit after sysroot.mount and before
# initrd-root-fs.target; scripted initrd: postMountCommands, ROOT /mnt-root), this records
# `reset` when ROOT is a mount point holding a tmpfs, else `failed` with the reason (e.g. the
# root came from the disk: a wrong fileSystems."/").
#
# none: the platform resets / (vpsFree.cz's impermanence feature), often with no initrd at
# all; where an initrd exists, this records `skipped`, reason "the platform resets /". Where
# none exists nothing runs, and the reader (`blankslate attest`, doctor) treats a MISSING
# record on kind none as skipped.
#
# The record (its file, format and safety) is ./record.bash's, beside this file or inlined
# before this text in the scripted initrd. A record that cannot be written is a warning; the
# exit status is 0 whenever the arguments are right, so a failed check never stops the boot
# by itself (the stage-2 check reads the record and fails visibly).

set -o nounset -o errexit -o pipefail -o errtrace
shopt -s inherit_errexit

readonly prog=blankslate-record

if [[ $(type -t record_write) != function ]]; then
  here=${BASH_SOURCE[0]%/*}
  [[ $here != "${BASH_SOURCE[0]}" ]] || here=.
  source -- "$here/record.bash" || { printf '%s: error: cannot load %s\n' "$prog" "$here/record.bash" >&2; exit 1; }
fi

usage() {
  printf 'usage: %s tmpfs ROOT | %s none\n' "${0##*/}" "${0##*/}" >&2
  exit 2
}

trap 'record_at_exit "$?"' EXIT
trap 'rc=$?; printf -v record_error "line %s: \`%s\` failed (exit %s)" "$LINENO" "$BASH_COMMAND" "$rc"; printf "%s: error: %s\n" "$prog" "$record_error" >&2' ERR

case ${1-} in
  none)
    (($# == 1)) || usage
    record_kind=none
    record_write skipped "the platform resets /"
    printf '%s: recorded: the platform resets /\n' "$prog"
    ;;
  tmpfs)
    (($# == 2)) || usage
    record_kind=tmpfs
    root=$2
    if [[ ! -d $root ]]; then
      reason="$(printf '%q' "$root") is not a directory"
    elif ! fstype=$(stat -f -c %T -- "$root") || ! dev=$(stat -c %d -- "$root") ||
      ! parent=$(stat -c %d -- "$root/.."); then
      reason="cannot stat $(printf '%q' "$root")"
    elif [[ $dev == "$parent" ]]; then
      reason="$(printf '%q' "$root") is not a mount point: / was not mounted"
    elif [[ $fstype != tmpfs ]]; then
      reason="/ ($(printf '%q' "$root")) is $fstype, not a tmpfs: it was not reset"
    else
      record_write reset ''
      printf '%s: recorded: / (%s) is a fresh tmpfs\n' "$prog" "$root"
      exit 0
    fi
    record_write failed "$reason"
    printf '%s: error: %s\n' "$prog" "$reason" >&2
    ;;
  *) usage ;;
esac
