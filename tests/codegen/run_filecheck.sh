#!/bin/sh
# Runs one FileCheck test: the `# RUN:` lines of CASE are shell commands
# whose output is piped into FileCheck with CASE as the check file.
# Substitutions: %qmc (the compiler), %s (the case), %S (its directory),
# %t (a fresh temporary directory), %FileCheck.
# usage: run_filecheck.sh QMC FILECHECK CASE
set -eu
qmc=$1 filecheck=$2 case=$3
dir=$(cd "$(dirname "$case")" && pwd)
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
grep '^# RUN: ' "$case" | sed 's/^# RUN: //' | while IFS= read -r line; do
    cmd=$(printf '%s' "$line" | sed -e "s|%qmc|$qmc|g" -e "s|%FileCheck|$filecheck|g" \
        -e "s|%s|$dir/$(basename "$case")|g" -e "s|%S|$dir|g" -e "s|%t|$tmp|g")
    echo "RUN: $cmd"
    sh -c "$cmd" || { echo "FAILED: $cmd" >&2; exit 1; }
done
