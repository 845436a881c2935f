#!/usr/bin/env bash
# callgraph.sh BUILD_DIR [options]: the file -> file dependency graph of qmc,
# computed from the object files with nm, and every cycle in it.
#
#   BUILD_DIR       a configured and BUILT tree (cmake ... -DCMAKE_EXPORT_COMPILE_COMMANDS=ON;
#                   cmake --build BUILD_DIR)
#   --roots "a b"   source folders whose objects are analysed
#                   (default: "compiler frontend runtime"; tests/, bench/ are never sources)
#   --edges         print every edge with the symbols that make it (default: summary only)
#   --dot FILE      also write the file graph as Graphviz
#   --layers FILE   check folder layering: FILE has one line per layer, top first, each
#                   line a list of folder prefixes (e.g. "compiler/driver"); an edge from a
#                   file to a file of a HIGHER layer (or a file of an unlisted folder) fails.
#                   Folders on one line may depend on each other only if listed with '~'
#                   between them (e.g. "compiler/ir~compiler/quant"); otherwise edges between
#                   folders of one line fail too.
#
# How: compile_commands.json maps every object to its source. For each object, `nm`
# gives the global symbols it defines (T D B R V W C ...) and the ones it needs (U).
# File A -> file B when A needs a symbol B defines. Objects built from the same source
# (the source listed in two targets) are merged. A generated source (build/frontend/parser.c)
# is named after the file it is generated from (frontend/parser.y) when that exists.
# Functions only called through a pointer still show up (taking the address is a
# reference); static and static inline functions are file-local and never make an edge.
#
# Output: per file its outgoing edges, then "cycles:" with every strongly connected
# component of more than one file, and every elementary cycle in each (Johnson's
# algorithm, capped at 200 per component). Exit status: 0 no cycle (and layering holds
# if --layers), 1 cycle or layering violation, 2 usage error.
set -euo pipefail

usage() { sed -n '2,30p' "$0" | sed 's/^# \{0,1\}//'; exit 2; }
[ $# -ge 1 ] || usage
build=$(cd "$1" && pwd); shift
roots="compiler frontend runtime"
edges=0
dot=""
layers=""
while [ $# -gt 0 ]; do
    case "$1" in
    --roots) roots="$2"; shift 2 ;;
    --edges) edges=1; shift ;;
    --dot) dot="$2"; shift 2 ;;
    --layers) layers="$2"; shift 2 ;;
    *) usage ;;
    esac
done
[ -f "$build/compile_commands.json" ] || { echo "callgraph: no $build/compile_commands.json (configure with -DCMAKE_EXPORT_COMPILE_COMMANDS=ON)" >&2; exit 2; }
src=$(sed -n 's/^CMAKE_HOME_DIRECTORY:INTERNAL=//p' "$build/CMakeCache.txt")
[ -d "$src" ] || { echo "callgraph: no source directory in $build/CMakeCache.txt" >&2; exit 2; }

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

# object<TAB>source (source relative to the source dir; generated ones renamed)
python3 - "$build" "$src" "$roots" >"$tmp/objs" <<'EOF'
import json, os, shlex, sys, glob
build, src, roots = sys.argv[1], sys.argv[2], sys.argv[3].split()
for e in json.load(open(os.path.join(build, "compile_commands.json"))):
    f = os.path.normpath(os.path.join(e["directory"], e["file"]))
    out = e.get("output")
    if out is None:
        args = e.get("arguments") or shlex.split(e["command"])
        out = args[args.index("-o") + 1]
    out = os.path.normpath(os.path.join(e["directory"], out))
    if f.startswith(build + "/"):   # first: the build tree may sit inside the source tree
        rel = os.path.relpath(f, build)
        stem = os.path.splitext(rel)[0]
        cands = sorted(glob.glob(os.path.join(src, stem) + ".*")) or sorted(
            glob.glob(os.path.join(src, "**", os.path.basename(stem) + ".*"), recursive=True))
        cands = [c for c in cands
                 if any(os.path.relpath(c, src).startswith(r + "/") for r in roots)]
        if cands:
            rel = os.path.relpath(cands[0], src)
    elif f.startswith(src + "/"):
        rel = os.path.relpath(f, src)
    else:
        continue
    if not any(rel == r or rel.startswith(r + "/") for r in roots):
        continue
    if not os.path.exists(out):
        sys.exit("callgraph: %s is not built (cmake --build %s)" % (out, build))
    print(out + "\t" + rel)
EOF

# file<TAB>D|U<TAB>symbol
while IFS=$'\t' read -r obj rel; do
    nm -g --defined-only "$obj" | awk -v f="$rel" 'NF==3 {print f "\tD\t" $3}'
    nm -g --undefined-only "$obj" | awk -v f="$rel" '{print f "\tU\t" $NF}'
done <"$tmp/objs" | sort -u >"$tmp/syms"

python3 - "$tmp/syms" "$edges" "$dot" "$layers" <<'EOF'
import sys, collections
syms, show_edges, dot, layers = sys.argv[1], sys.argv[2] == "1", sys.argv[3], sys.argv[4]
defs = collections.defaultdict(set)   # symbol -> files defining it
need = collections.defaultdict(set)   # file -> symbols it needs
files = set()
for line in open(syms):
    f, k, s = line.rstrip("\n").split("\t")
    files.add(f)
    (defs[s].add(f) if k == "D" else need[f].add(s))
status = 0
for s, fs in sorted(defs.items()):
    if len(fs) > 1 and s != "main":  # main: qmc's and the model executables' (never linked together)
        print("warning: %s defined in %s" % (s, ", ".join(sorted(fs))))
edge = collections.defaultdict(set)   # (a, b) -> symbols
for a in files:
    for s in need[a]:
        for b in defs.get(s, ()):
            if b != a:
                edge[(a, b)].add(s)
succ = collections.defaultdict(set)
for a, b in edge:
    succ[a].add(b)

print("files: %d, file edges: %d" % (len(files), len(edge)))
for a in sorted(files):
    if not succ[a]:
        continue
    print("%s ->" % a)
    for b in sorted(succ[a]):
        if show_edges:
            print("    %-34s %s" % (b, " ".join(sorted(edge[(a, b)]))))
        else:
            print("    %s (%d)" % (b, len(edge[(a, b)])))

if dot:
    with open(dot, "w") as o:
        o.write("digraph qmc {\n  rankdir=LR; node [shape=box];\n")
        for (a, b), s in sorted(edge.items()):
            o.write('  "%s" -> "%s" [tooltip="%s"];\n' % (a, b, " ".join(sorted(s))))
        o.write("}\n")

# Tarjan's strongly connected components (iterative)
index, low, on, stack, sccs, counter = {}, {}, set(), [], [], [0]
def strong(v0):
    work = [(v0, iter(sorted(succ[v0])))]
    index[v0] = low[v0] = counter[0]; counter[0] += 1
    stack.append(v0); on.add(v0)
    while work:
        v, it = work[-1]
        for w in it:
            if w not in index:
                index[w] = low[w] = counter[0]; counter[0] += 1
                stack.append(w); on.add(w)
                work.append((w, iter(sorted(succ[w]))))
                break
            if w in on:
                low[v] = min(low[v], index[w])
        else:
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[v])
            if low[v] == index[v]:
                comp = []
                while True:
                    w = stack.pop(); on.discard(w); comp.append(w)
                    if w == v:
                        break
                sccs.append(sorted(comp))
for v in sorted(files):
    if v not in index:
        strong(v)

def cycles_in(comp, cap=200):
    """Johnson's elementary cycles restricted to comp, each starting at its least file."""
    nodes = sorted(comp)
    out = []
    for i, s in enumerate(nodes):
        allowed = set(nodes[i:])
        blocked, B, path = set(), collections.defaultdict(set), [s]
        def unblock(u):
            todo = [u]
            while todo:
                x = todo.pop()
                if x in blocked:
                    blocked.discard(x)
                    todo.extend(B[x]); B[x].clear()
        def circuit(v):
            found = False
            blocked.add(v)
            for w in sorted(succ[v] & allowed):
                if len(out) >= cap:
                    return True
                if w == s:
                    out.append(path + [s]); found = True
                elif w not in blocked:
                    path.append(w)
                    if circuit(w):
                        found = True
                    path.pop()
            if found:
                unblock(v)
            else:
                for w in succ[v] & allowed:
                    B[w].add(v)
            return found
        circuit(s)
    return out

big = [c for c in sccs if len(c) > 1]
print("\ncycles: %d strongly connected component(s) of more than one file" % len(big))
for n, comp in enumerate(sorted(big), 1):
    status = 1
    print("SCC %d: %s" % (n, " ".join(comp)))
    for cyc in cycles_in(comp):
        print("  cycle: " + " -> ".join(cyc))
        for a, b in zip(cyc, cyc[1:]):
            print("      %s -> %s: %s" % (a, b, " ".join(sorted(edge[(a, b)]))))

if layers:
    rank, peers = {}, {}
    for r, line in enumerate(l for l in open(layers) if l.strip() and not l.startswith("#")):
        for group in line.split():
            members = group.split("~")
            for m in members:
                rank[m.rstrip("/")] = r
                peers[m.rstrip("/")] = set(x.rstrip("/") for x in members)
    def folder(f):
        best = None
        for p in rank:
            if (f == p or f.startswith(p + "/")) and (best is None or len(p) > len(best)):
                best = p
        return best
    bad = []
    for (a, b), s in sorted(edge.items()):
        fa, fb = folder(a), folder(b)
        if fa is None or fb is None:
            bad.append("%s -> %s: folder not in the layers file" % (a, b))
        elif rank[fb] < rank[fa]:
            bad.append("%s -> %s: upward (%s)" % (a, b, " ".join(sorted(s))))
        elif rank[fb] == rank[fa] and fa != fb and fb not in peers[fa]:
            bad.append("%s -> %s: sideways (%s)" % (a, b, " ".join(sorted(s))))
    print("\nlayering: %d violation(s)" % len(bad))
    for x in bad:
        print("  " + x)
    if bad:
        status = 1
sys.exit(status)
EOF
