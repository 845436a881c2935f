#!/bin/sh
# run-case.sh: runs one golden test case and compares what it prints.
#
#   run-case.sh [--exit N] [--stdout EXT] CASE
#
# CASE is a file (usually a model) holding directives in comments:
#   # RUN: CMD        the command under test (exactly one)
#   # SETUP: CMD      run before it; must succeed (any number)
#   # EXIT: N         its expected exit status (default: --exit, else 1)
#   # ABSENT: PATH    must not exist afterwards (nothing written on error)
# Substitutions in commands and paths:
#   %s  the case file's name     %T  an empty temporary folder for this case
#   %B  the generated files (tests/diag/make_bad_files)
#   %src  $QMC_SOURCE   %qmc  $QMC
#   %npycmp  %npyslice  %mkdata  the test tools
# The command runs in the case's folder, so messages name it relatively.
# Its stderr, with absolute paths turned back into the placeholders above,
# must equal CASE-without-extension.err (empty if there is none); its stdout
# must equal CASE-without-extension.EXT (--stdout, default out; empty if
# none). No temporary file (*.tmp.*) may be left in %T.
#
# QMC_UPDATE_GOLDEN=1 rewrites the golden files from what the command
# printed instead of comparing (the exit status is still checked). Tests
# never do this by themselves.
set -u

want_exit=1
out_ext=out
while [ $# -gt 1 ]; do
    case $1 in
    --exit) want_exit=$2; shift 2 ;;
    --stdout) out_ext=$2; shift 2 ;;
    *) echo "run-case.sh: unknown option '$1'" >&2; exit 2 ;;
    esac
done
[ $# -eq 1 ] || { echo "usage: run-case.sh [--exit N] [--stdout EXT] CASE" >&2; exit 2; }
: "${QMC:?QMC is not set}" "${QMC_SOURCE:?}"

dir=$(cd "$(dirname "$1")" && pwd -P)
name=$(basename "$1")
base=${name%.*}
case_file=$dir/$name
work=$(pwd -P)/run-case
tmp=$work/$base
rm -rf "$tmp" "$tmp.stdout" "$tmp.stderr" "$tmp.norm"
mkdir -p "$tmp"

# Control-A separates sed's fields: it is in no path.
sep=$(printf '\001')
# Quotes a literal for a sed replacement / a sed pattern.
repl_quote() { printf '%s\n' "$1" | sed 's/[\\&]/\\&/g'; }
pat_quote() { printf '%s\n' "$1" | sed 's/[]\\.*^$[]/\\&/g'; }

substitute() {
    printf '%s\n' "$1" | sed \
        -e "s${sep}%qmc${sep}$(repl_quote "$QMC")${sep}g" \
        -e "s${sep}%npycmp${sep}$(repl_quote "${NPYCMP:-npycmp}")${sep}g" \
        -e "s${sep}%npyslice${sep}$(repl_quote "${NPYSLICE:-npyslice}")${sep}g" \
        -e "s${sep}%mkdata${sep}$(repl_quote "${MKDATA:-mkdata}")${sep}g" \
        -e "s${sep}%src${sep}$(repl_quote "$QMC_SOURCE")${sep}g" \
        -e "s${sep}%B${sep}$(repl_quote "${QMC_BAD:-}")${sep}g" \
        -e "s${sep}%T${sep}$(repl_quote "$tmp")${sep}g" \
        -e "s${sep}%s${sep}$(repl_quote "$name")${sep}g"
}

# Absolute paths back to placeholders, most specific first.
normalise() {
    set -- -e "s${sep}$(pat_quote "$tmp")${sep}%T${sep}g"
    [ -n "${QMC_BAD:-}" ] && set -- "$@" -e "s${sep}$(pat_quote "$QMC_BAD")${sep}%B${sep}g"
    set -- "$@" -e "s${sep}$(pat_quote "$QMC_SOURCE")${sep}%src${sep}g"
    sed "$@"
}

directive() { sed -n "s/^#[[:space:]]*$1:[[:space:]]*//p" "$case_file"; }

run_line=$(directive RUN)
[ -n "$run_line" ] || { echo "$name: no '# RUN:' line" >&2; exit 2; }
[ "$(printf '%s\n' "$run_line" | wc -l)" -eq 1 ] || { echo "$name: more than one '# RUN:' line" >&2; exit 2; }
e=$(directive EXIT)
[ -n "$e" ] && want_exit=$e

fail=0
directive SETUP | while IFS= read -r line; do
    cmd=$(substitute "$line")
    (cd "$dir" && eval "$cmd") || { echo "$name: setup failed: $cmd" >&2; exit 1; }
done || exit 1

cmd=$(substitute "$run_line")
(cd "$dir" && eval "$cmd") >"$tmp.stdout" 2>"$tmp.stderr"
status=$?

if [ "$status" -ne "$want_exit" ]; then
    echo "$name: exit status $status, expected $want_exit" >&2
    echo "--- command: $cmd" >&2
    echo "--- stderr:" >&2
    cat "$tmp.stderr" >&2
    fail=1
fi

# compare (or update) one stream against its golden file
check() { # STREAM_FILE GOLDEN WHAT
    normalise <"$1" >"$tmp.norm"
    if [ "${QMC_UPDATE_GOLDEN:-0}" = 1 ]; then
        if [ -s "$tmp.norm" ]; then cp "$tmp.norm" "$2"; echo "updated $2"; else rm -f "$2"; fi
        return 0
    fi
    if [ -f "$2" ]; then
        diff -u "$2" "$tmp.norm" >&2 || { echo "$name: $3 differs from $(basename "$2")" >&2; return 1; }
    elif [ -s "$tmp.norm" ]; then
        echo "$name: unexpected $3 (no $(basename "$2")):" >&2
        cat "$tmp.norm" >&2
        return 1
    fi
    return 0
}
check "$tmp.stderr" "$dir/$base.err" stderr || fail=1
check "$tmp.stdout" "$dir/$base.$out_ext" stdout || fail=1

for path in $(directive ABSENT); do
    p=$(substitute "$path")
    case $p in /*) ;; *) p=$dir/$p ;; esac
    if [ -e "$p" ]; then
        echo "$name: $path exists but the command should not have written it" >&2
        fail=1
    fi
done
leftover=$(find "$tmp" -name '*.tmp.*' | head -5)
if [ -n "$leftover" ]; then
    echo "$name: temporary files left behind: $leftover" >&2
    fail=1
fi

[ $fail -eq 0 ] && rm -rf "$tmp" "$tmp.stdout" "$tmp.stderr" "$tmp.norm"
exit $fail
