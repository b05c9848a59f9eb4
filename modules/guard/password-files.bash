#!/usr/bin/env bash
# The boot-time guard (modules/guard/password-files.nix): checks each admin's
# hashedPasswordFile given as an argument. Root login is off and users are
# immutable, so a file that is missing, a symlink, not 0600 and root's, or
# without a password hash on its first line leaves that admin without sudo.
# Each problem is one line at the journal's "crit" level (the <2> prefix);
# the exit status is 1 when there was any. It changes nothing.
# The hash rules are those of scripts/blankslate/doctor.py (tests check both).
set -u

hash_patterns=(
  '^\$(y|gy)\$[./0-9A-Za-z]+\$[./0-9A-Za-z]*\$[./0-9A-Za-z]{43}$'
  '^\$7\$[./0-9A-Za-z]+\$[./0-9A-Za-z]{43}$'
  '^\$2[abxy]\$[0-9]{2}\$[./0-9A-Za-z]{53}$'
  '^\$6\$(rounds=[0-9]+\$)?[./0-9A-Za-z]{0,16}\$[./0-9A-Za-z]{86}$'
  '^\$5\$(rounds=[0-9]+\$)?[./0-9A-Za-z]{0,16}\$[./0-9A-Za-z]{43}$'
)

problems=0
problem() {
  printf '<2>blankslate: LOCKOUT RISK: %s\n' "$1"
  problems=$((problems + 1))
}

is_hash() {
  local pattern
  for pattern in "${hash_patterns[@]}"; do
    [[ $1 =~ $pattern ]] && return 0
  done
  return 1
}

for file in "$@"; do
  if [[ -L $file ]]; then
    problem "$file is a symlink (a password file must be a plain file)"
    continue
  fi
  if [[ ! -e $file ]]; then
    problem "$file is missing: its admin cannot use sudo"
    continue
  fi
  if [[ ! -f $file ]]; then
    problem "$file is not a regular file"
    continue
  fi
  if ! owner_mode=$(stat -c '%u %a' -- "$file"); then
    problem "$file: cannot stat it"
    continue
  fi
  if [[ $owner_mode != "0 600" ]]; then
    problem "$file has owner uid ${owner_mode% *} and mode ${owner_mode#* } (want uid 0, mode 600)"
  fi
  line=
  IFS= read -r line <"$file" || true
  if [[ -z $line ]]; then
    problem "$file is empty: no password is set"
  elif [[ $line == '!'* || $line == '*'* ]]; then
    problem "$file holds a locked password ('${line:0:1}')"
  elif ! is_hash "$line"; then
    problem "$file does not hold a password hash (yescrypt, bcrypt, sha-512, sha-256, scrypt)"
  fi
done

if ((problems > 0)); then
  printf '<2>blankslate: %d problem(s) with the password files; fix them now with `blankslate passwd USER` (root login is off)\n' "$problems"
  exit 1
fi
printf 'blankslate: %d password file(s) checked, all hold a hash, 0600, root'"'"'s\n' "$#"
