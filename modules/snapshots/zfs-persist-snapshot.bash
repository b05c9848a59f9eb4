#!/usr/bin/env bash
# blankslate: a snapshot of the persist dataset, and pruning of the older ones.
#
#   zfs-persist-snapshot.bash DATASET KEEP
#
# Run by the unit blankslate-persist-snapshot (a timer starts it) on the running system, with
# bash, coreutils and zfs on PATH; tests/scripts run this very file against a fake `zfs`.
#
# Steps:
#   1. refuse to do anything if DATASET does not exist;
#   2. unless KEEP is 0: `zfs snapshot DATASET@blankslate-<UTC time of this run>` (".N"
#      appended when taken; ZFS snapshots are read-only);
#   3. prune: keep the KEEP most recently created of these snapshots (ZFS's createtxg: no
#      clock involved) and destroy the others; KEEP 0 destroys them all. Nothing is pruned
#      when the clock is earlier than the newest name (see ../rollback/kept.bash).
# Naming and pruning are the rollback's own code, ../rollback/kept.bash. Snapshots of
# DATASET not named blankslate-<time> (yours, a replication tool's) are never touched.
#
# Crash safety. `zfs snapshot` and `zfs destroy` are atomic: after a crash the snapshot
# exists or not, and a re-run (the next tick of the timer) takes a new one and prunes what
# is due.

set -o nounset -o errexit -o pipefail -o errtrace
shopt -s inherit_errexit

readonly prog=blankslate-persist-snapshot

if [[ $(type -t kept_prune) != function ]]; then
  here=${BASH_SOURCE[0]%/*}
  [[ $here != "${BASH_SOURCE[0]}" ]] || here=.
  source -- "$here/../rollback/kept.bash" || { printf '%s: error: cannot load %s\n' "$prog" "$here/../rollback/kept.bash" >&2; exit 1; }
fi

if (( $# != 2 )); then
  printf 'usage: %s DATASET KEEP\n' "${0##*/}" >&2
  exit 2
fi
dataset=$1 keep=$2

# pool/a/b by scripts/blankslate/rules.json's zfsPoolDataset, the rule Nix and `blankslate plan`
# check; the unit (./persist.nix) passes it in the environment. A name that follows it never
# starts with '-', so it cannot be taken for an option.
dataset_rule=${BLANKSLATE_ZFS_DATASET_RULE-}
[[ -n $dataset_rule ]] || die "BLANKSLATE_ZFS_DATASET_RULE must hold the dataset name rule (the unit sets it)"
# the whole NAME matches the extended regular expression RULE, byte by byte
follows() { local LC_ALL=C; [[ $2 =~ ^($1)$ ]]; }
follows "$dataset_rule" "$dataset" || die "DATASET is not a dataset name: $(q "$dataset")"
check_count KEEP "$keep"
keep=$((10#$keep))

keep_newest=$keep keep_days=0
kept_prefix=blankslate-

zfs list -H -o name "$dataset" >/dev/null || die "dataset $(q "$dataset") not found; nothing changed"

zfs_kept_exists() { zfs list -H -o name -t snapshot "$dataset@$1" >/dev/null 2>&1; }
zfs_kept_label() { printf '%s@%s' "$dataset" "$1"; }
zfs_kept_delete() {
  zfs destroy "$dataset@$1"
  log "destroyed $(q "$dataset@$1")"
}
# "createtxg creation name" per snapshot of the dataset itself (-d 1), exact numbers (-p)
zfs_kept_list() {
  local listing line txg created name
  listing=$(zfs list -H -p -t snapshot -d 1 -o createtxg,creation,name "$dataset")
  while IFS=$'\t' read -r txg created name; do
    [[ -n $name ]] || continue
    [[ $name == "$dataset@"* ]] || continue
    name=${name#"$dataset@"}
    is_kept_name "$name" || continue
    kept_stamps+=("${BASH_REMATCH[1]}")
    [[ $txg =~ ^[0-9]+$ ]] || txg=99999999999999999999
    [[ $created =~ ^[0-9]+$ ]] || created=-
    kept_text+="$txg $created $name"$'\n'
  done <<<"$listing"
}

kept_clock
if (( keep > 0 )); then
  kept_new_name zfs_kept_exists
  zfs snapshot "$dataset@$kept_name"
  log "snapshot of $(q "$dataset") taken: $(q "$dataset@$kept_name")"
fi

kept_prune zfs_kept_list zfs_kept_delete zfs_kept_label

if (( prune_failed )); then
  log "done (some snapshots could not be destroyed, see above)"
  exit 1
fi
log "done"
