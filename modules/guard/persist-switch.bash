#!/usr/bin/env bash
# The switch-time guard (modules/guard/persist-switch.nix), run by nixpkgs'
# system.preSwitchChecks before a new generation activates:
#
#   persist-switch.bash [--root DIR] [--current SYSTEM] [--seed] NEW_SYSTEM [ACTION]
#
# A path the new generation persists and the current one does not is about to
# be bind-mounted from persistent storage: whatever the live path holds now is
# hidden by that mount and erased by the next reset. This lists every such
# path whose live copy holds data (a non-empty directory or file) while its
# persistent copy is missing or empty, and refuses (exit 1) with the
# `blankslate seed` command that copies them. With --seed
# (blankslate.seedOnSwitch) it runs that command first and refuses only what
# is still not copied after it.
#
# NEW_SYSTEM and SYSTEM (default /run/current-system) are system toplevels;
# their persisted paths come from their etc/blankslate/plan.json. A current
# system without a plan (the switch that turns blankslate on) persists
# nothing yet: every path of the new plan is checked. ACTION is the verb
# switch-to-configuration passes (switch, boot, test, check, dry-activate;
# missing with nixpkgs before the verb was passed, taken as switch): "check"
# and "dry-activate" never seed, they report what the switch would do. With
# `boot` nothing is mounted before the reboot, but the reboot's reset erases
# the live copy and the new generation then mounts the empty persistent copy:
# the same check applies.
#
# --root DIR: the live tree and the persistence roots are under DIR (tests).
# Nothing here writes; no symlink is followed (a symlink on the way to a
# persistent copy is not a persistent copy), and the live copy is only
# inspected. Needs bash, coreutils, findutils (find) and jq.
set -o errexit -o nounset -o pipefail
shopt -s inherit_errexit

usage() {
  printf 'usage: %s [--root DIR] [--current SYSTEM] [--seed] NEW_SYSTEM [ACTION]\n' "${0##*/}" >&2
  exit 2
}

root=
current=/run/current-system
seed=0
while (($# > 0)); do
  case $1 in
    --root)
      (($# >= 2)) || usage
      root=${2%/}
      shift 2
      ;;
    --current)
      (($# >= 2)) || usage
      current=$2
      shift 2
      ;;
    --seed)
      seed=1
      shift
      ;;
    --)
      shift
      break
      ;;
    -*) usage ;;
    *) break ;;
  esac
done
(($# >= 1 && $# <= 2)) || usage
new=$1
action=${2:-switch}

fail() {
  printf 'blankslate: %s\n' "$1" >&2
  exit 1
}

new_plan=$new/etc/blankslate/plan.json
current_plan=$current/etc/blankslate/plan.json
[[ -f $new_plan ]] || fail "the new system has no plan at $new_plan; cannot check its persisted paths"

# Every persisted path of a plan as NUL-separated triples: kind (d or f), root, path.
persisted() {
  jq -j '(.persistence.directories[] | "d", .root, .directory),
         (.persistence.files[] | "f", .root, .file)
         | if type == "string" then ., "\u0000" else error("not a string") end' "$1"
}

declare -A before=()
if [[ -f $current_plan ]]; then
  mapfile -d '' -t fields < <(persisted "$current_plan")
  wait $! || fail "cannot read the persisted paths of the current system's plan $current_plan"
  for ((i = 0; i + 2 < ${#fields[@]}; i += 3)); do
    printf -v key '%q %q %q' "${fields[i]}" "${fields[i + 1]}" "${fields[i + 2]}"
    before[$key]=1
  done
fi

mapfile -d '' -t fields < <(persisted "$new_plan")
wait $! || fail "cannot read the persisted paths of the new system's plan $new_plan"
kinds=()
roots=()
paths=()
for ((i = 0; i + 2 < ${#fields[@]}; i += 3)); do
  printf -v key '%q %q %q' "${fields[i]}" "${fields[i + 1]}" "${fields[i + 2]}"
  [[ -n ${before[$key]-} ]] && continue
  kinds+=("${fields[i]}")
  roots+=("${fields[i + 1]}")
  paths+=("${fields[i + 2]}")
done
((${#paths[@]} > 0)) || exit 0

# The first symlink among BASE/a, BASE/a/b, ... for REL=/a/b/...; fails when there is none.
first_link() {
  local base=$1 rest=${2#/} prefix=
  while [[ -n $rest ]]; do
    prefix+=/${rest%%/*}
    if [[ $rest == */* ]]; then rest=${rest#*/}; else rest=; fi
    if [[ -L $base$prefix ]]; then
      printf '%s' "$base$prefix"
      return 0
    fi
  done
  return 1
}

nonempty_dir() {
  [[ -n $(find "$1" -mindepth 1 -maxdepth 1 -print -quit) ]]
}

# Whether PATH (kind KIND) holds data, never through a symlink.
holds_data() {
  local kind=$1 path=$2
  case $kind in
    d) [[ -d $path ]] && nonempty_dir "$path" ;;
    f) [[ -f $path && -s $path ]] ;;
  esac
}

# Why the persistent copy KIND BASE+REL does not keep the data; fails when it does.
persistent_problem() {
  local kind=$1 base=$2 rel=$3 link copy=$2$3
  if link=$(first_link "$base" "$rel"); then
    printf '%s is a symlink (never followed; remove it)' "$link"
  elif [[ ! -e $copy ]]; then
    printf '%s is missing' "$copy"
  elif [[ $kind == d && ! -d $copy ]]; then
    printf '%s is not a directory' "$copy"
  elif [[ $kind == f && ! -f $copy ]]; then
    printf '%s is not a regular file' "$copy"
  elif holds_data "$kind" "$copy"; then
    return 1
  elif [[ $kind == d ]]; then
    printf '%s is empty (seed fills it)' "$copy"
  else
    printf '%s is empty (seed leaves an empty file as is: remove it first)' "$copy"
  fi
}

# Fills `at_risk` (paths) and `reasons` with the new paths whose data the switch would lose.
check() {
  at_risk=()
  reasons=()
  local i kind path live reason
  for i in "${!paths[@]}"; do
    kind=${kinds[i]}
    path=${paths[i]}
    live=$root$path
    first_link "$root" "$path" >/dev/null && continue
    holds_data "$kind" "$live" || continue
    reason=$(persistent_problem "$kind" "$root${roots[i]}" "$path") || continue
    at_risk+=("$path")
    reasons+=("$reason")
  done
}

seed_command=(blankslate seed --plan "$new_plan")
[[ -n $root ]] && seed_command+=(--root "$root")

# The arguments shell-quoted, separated by single spaces.
quoted() {
  local out
  printf -v out '%q ' "$@"
  printf '%s' "${out% }"
}

report() {
  local i
  printf 'blankslate: %d newly persisted path(s) hold data that the new generation'"'"'s bind mounts would hide and the next boot would erase:\n' "${#at_risk[@]}" >&2
  for i in "${!at_risk[@]}"; do
    printf '  %q: %s\n' "${at_risk[i]}" "${reasons[i]}" >&2
  done
}

check
((${#at_risk[@]} > 0)) || {
  printf 'blankslate: %d newly persisted path(s), none with data the switch would hide\n' "${#paths[@]}" >&2
  exit 0
}

if ((seed == 1)); then
  case $action in
    check | dry-activate)
      report
      printf 'blankslate: blankslate.seedOnSwitch is on: the switch copies them first with:\n  %s\n' "$(quoted "${seed_command[@]}" "${at_risk[@]}")" >&2
      exit 0
      ;;
  esac
  printf 'blankslate: seedOnSwitch: copying %d newly persisted path(s) into persistent storage\n' "${#at_risk[@]}" >&2
  "${seed_command[@]}" --yes "${at_risk[@]}" >&2 || true
  check
  ((${#at_risk[@]} > 0)) || exit 0
  report
  printf 'blankslate: refusing to %s: blankslate seed did not copy them (see its lines above); fix that, then run the switch again\n' "$action" >&2
  exit 1
fi

report
printf 'blankslate: refusing to %s. Copy them into persistent storage first, then run it again:\n  %s\n' \
  "$action" "$(quoted "${seed_command[@]}" "${at_risk[@]}")" >&2
printf '(or set blankslate.seedOnSwitch = true to seed at switch time; NIXOS_NO_CHECK=1 skips every pre-switch check)\n' >&2
exit 1
