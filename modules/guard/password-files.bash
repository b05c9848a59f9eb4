#!/usr/bin/env bash
# The boot-time guard (modules/guard/password-files.nix): checks each admin's
# hashedPasswordFile given as an argument. Root login is off and users are
# immutable, so a file that is missing, a symlink, not 0600 and root's, or
# that does not hold one password hash leaves that admin without sudo.
# Each problem is one line at the journal's "crit" level (the <2> prefix);
# the exit status is 1 when there was any. It changes nothing.
# What a file may hold is passwordfile.py's rule, which doctor and passwd apply
# too: the hash, with or without one final newline, and nothing else (NixOS's
# users script removes only that newline and writes the rest into /etc/shadow).
# The schemes are read from the file Python reads, password-hashes.txt:
# $BLANKSLATE_HASH_RULES (the unit sets it), else the repository's copy.
set -u
export LC_ALL=C # bytes, and ASCII ranges in the patterns

max_bytes=4096
rules=${BLANKSLATE_HASH_RULES:-${BASH_SOURCE[0]%/*}/../../scripts/blankslate/password-hashes.txt}
scheme_names=()
hash_patterns=()
if [[ -f $rules && -r $rules ]]; then
  while IFS=' ' read -r name pattern; do
    [[ -z $name || $name == '#'* ]] && continue
    scheme_names+=("$name")
    hash_patterns+=("$pattern")
  done <"$rules"
fi
if ((${#hash_patterns[@]} == 0)); then
  printf '<2>blankslate: LOCKOUT RISK: no password hash rules in %s: cannot check the password files\n' "$rules"
  exit 1
fi
scheme_list=${scheme_names[*]}
scheme_list=${scheme_list// /, }

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
  if ! owner_mode_size=$(stat -c '%u %a %s' -- "$file"); then
    problem "$file: cannot stat it"
    continue
  fi
  read -r owner mode size <<<"$owner_mode_size"
  if [[ "$owner $mode" != "0 600" ]]; then
    problem "$file has owner uid $owner and mode $mode (want uid 0, mode 600)"
  fi
  # At most max_bytes + 1 bytes are read, whatever size the file has or grows to.
  # A command substitution drops NUL bytes (and final newlines: the x keeps
  # them), so a NUL shows as fewer bytes kept than were read.
  read_bytes=$(head -c "$((max_bytes + 1))" -- "$file" | wc -c) || read_bytes=-1
  { content=$(head -c "$((max_bytes + 1))" -- "$file" && printf x) || content=; } 2>/dev/null
  content=${content%x}
  hash=${content%$'\n'}
  if ((size > max_bytes || read_bytes > max_bytes)); then
    problem "$file is larger than $max_bytes bytes: it does not hold one password hash"
  elif ((read_bytes != ${#content})); then
    problem "$file holds a NUL byte: it does not hold a password hash"
  elif [[ -z $hash ]]; then
    problem "$file is empty: no password is set"
  elif [[ $hash == *$'\n'* ]]; then
    problem "$file has more than one line: NixOS removes only the final newline, and the entry in /etc/shadow would be broken"
  elif [[ $hash == '!'* || $hash == '*'* ]]; then
    problem "$file holds a locked password ('${hash:0:1}')"
  elif ! is_hash "$hash"; then
    problem "$file does not hold a password hash ($scheme_list)"
  fi
done

if ((problems > 0)); then
  # shellcheck disable=SC2016 # the backquotes are text
  printf '<2>blankslate: %d problem(s) with the password files; fix them now with `blankslate passwd USER` (root login is off)\n' "$problems"
  exit 1
fi
printf 'blankslate: %d password file(s) checked, all hold a hash, 0600, root'"'"'s\n' "$#"
