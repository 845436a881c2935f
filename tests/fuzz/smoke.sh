#!/bin/sh
# smoke.sh FUZZER WORKDIR [FUZZER OPTIONS] CORPUS...: a short libFuzzer run
# (5 s) over the checked-in corpora; new inputs go to WORKDIR, never into
# the source tree. Any crash, leak, timeout or UB report fails the test.
set -eu
fuzzer=$1
work=$2
shift 2
mkdir -p "$work"
exec "$fuzzer" -max_total_time=5 -timeout=20 -rss_limit_mb=2048 -print_final_stats=1 "$work" "$@"
