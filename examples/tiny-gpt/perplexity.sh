#!/bin/sh
# Perplexity of the byte-level GPT over its 16 validation sequences
# (val_tokens[128s : 128s+128] predicting the next byte), as in
# README.md. PyTorch fp32: 8.7032.
# Usage: examples/tiny-gpt/perplexity.sh [PATH/TO/qmc] [extra qmc eval options]
set -eu
here=$(dirname "$0")
qmc=${1:-qmc}
[ $# -gt 0 ] && shift
"$qmc" eval "$here/tiny-gpt.qm" --metric perplexity --tokens "$here/val_tokens.npy" "$@"
