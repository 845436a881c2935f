#!/bin/sh
# Writes the man page qmc.1 from qmc's own help texts: `qmc --help` names
# the commands, `qmc COMMAND --help` describes each (shown as it prints it).
# Run at build time (cmake/install.cmake), so the page never disagrees with
# the program.
# usage: qmc-man.sh QMC VERSION OUT
set -eu
qmc=$1 version=$2 out=$3
# roff: a backslash is \e, a minus \-, a line starting with . or ' is \&-escaped
esc() { sed -e 's/\\/\\e/g' -e 's/-/\\-/g' -e "s/^\\([.']\\)/\\\\\\&\\1/"; }
{
    cat <<HEAD
.TH QMC 1 "" "qmc $version" "User Commands"
.SH NAME
qmc \\- the quantizing model compiler
.SH SYNOPSIS
.B qmc
.I command
.RI [ options ]
.br
.B qmc \\-\\-help
|
.B \\-\\-version
.SH DESCRIPTION
.B qmc
compiles a model written in a small language, with its weights in a
safetensors file, into native code for x86\\-64 or aarch64: an executable, an
object file and header, or a static or shared library. It quantizes the
weights of every linear layer to the precision asked for (int8, int4, FP8,
optionally with int8 activations), and runs the same model in a reference
interpreter that simulates the same numerics.
.PP
.B qmc \\-\\-version
prints the version, the LLVM version and the git commit qmc was built from.
.SH COMMANDS
HEAD
    "$qmc" --help | sed -n 's/^  \([a-z][a-z]*\)  *\(.*\)$/\1 \2/p' | while read -r cmd summary; do
        printf '.SS "qmc %s"\n%s.\n' "$cmd" "$(printf '%s' "$summary" | esc)"
        if "$qmc" "$cmd" --help >"$out.help" 2>/dev/null; then
            printf '.PP\n.nf\n'
            esc <"$out.help"
            printf '.fi\n'
        fi
    done
    cat <<'TAIL'
.SH ENVIRONMENT
.TP
.B QMC_RUNTIME_DIR
The folder holding the runtime libraries that
.B qmc compile
links into executables and libraries, one subfolder per target
.RI ( x86_64\-linux\-gnu/libqmc_rt.a ).
By default qmc uses the ones installed beside it.
.TP
.B QMC_NUM_THREADS
The number of threads a compiled executable runs on (default 1).
.SH FILES
.TP
.I PREFIX/lib/qmc/TRIPLE/libqmc_rt.a
The runtime every compiled model links, for each target
.RI ( PREFIX
is the folder above the one holding
.BR qmc ).
.TP
.I PREFIX/lib/qmc/TRIPLE/libqmc_main.a
The main program of compiled executables.
.TP
.I PREFIX/include/qmc_runtime.h
The runtime's public interface.
.TP
.I PREFIX/lib/cmake/qmc/
The CMake package:
.B find_package(qmc)
and
.BR qmc_add_model() .
.TP
.I PREFIX/lib/pkgconfig/qmc\-runtime.pc
For
.BR "pkg\-config \-\-cflags \-\-libs qmc\-runtime" .
.SH SEE ALSO
.BR clang (1),
.BR pkg\-config (1);
the documentation and examples in
.IR PREFIX/share/doc/qmc/ .
TAIL
} >"$out.tmp"
rm -f "$out.help"
mv "$out.tmp" "$out"
