// liveness.mjs: the memory case. The largest set of simultaneously live
// activations of a model, computed here from `qmc inspect`'s IR (shapes and
// operands) independently of the compiler's planner, next to the workspace
// each compiled build asks for (NAME_WORKSPACE_SIZE in its header).
//
//   node liveness.mjs INSPECT.txt RESULTS.jsonl IMPL=HEADER.h...
//
// Nodes run in IR order. An activation is every node that is not an input,
// weight or constant, and is not written straight into a model output (the
// caller's buffer): it is live from the node that computes it to its last
// reader. While a node runs, its operands and its result are live at once,
// and attention also holds its T x T scores (f32), as qmc's attention does.
// A linear layer of an :a8 build also holds its input quantized to int8 while
// it runs: one code per element (rows padded to the int4 group), a scale
// per row and a sum per row and group, as compiler/ir/plan.c describes them
// (not its float copy of the rows, which a target with integer dot
// products does not need). Peak = max over nodes of the bytes live then
// (4-byte elements; also given with each buffer rounded up to 64 bytes, as
// a planner must align them). IMPL is "qmc PRECISION".
import { appendFileSync, readFileSync } from 'node:fs';

const [inspectPath, out, ...builds] = process.argv.slice(2);
const nodes = [];
const outputs = new Set();
for (const line of readFileSync(inspectPath, 'utf8').split('\n')) {
  let m = line.match(/^%(\d+) (\S+) = (\w+)((?: %\d+,?)*) : \w+\[([^\]]*)\]/);
  if (m) {
    const operands = [...m[4].matchAll(/%(\d+)/g)].map((x) => Number(x[1]));
    const dims = m[5].trim() ? m[5].split(',').map(Number) : [];
    nodes[Number(m[1])] = { name: m[2], op: m[3], operands, count: dims.reduce((a, b) => a * b, 1), dims };
    continue;
  }
  m = line.match(/^output \S+ = %(\d+)/);
  if (m) outputs.add(Number(m[1]));
}

const stored = (i) => !['input', 'weight', 'const'].includes(nodes[i].op) && !outputs.has(i);
const lastUse = nodes.map((_, i) => i);
nodes.forEach((n, i) => n.operands.forEach((j) => { lastUse[j] = Math.max(lastUse[j], i); }));

function peak(align, precision) {
  const size = (bytes) => (align ? Math.ceil(bytes / 64) * 64 : bytes);
  const a8 = precision.includes(':a8');
  const group = precision.startsWith('int4') ? Number(precision.match(/:g(\d+)/)?.[1] ?? 32) : 0;
  let live = 0, best = 0, at = -1;
  nodes.forEach((n, i) => {
    if (stored(i)) live += size(4 * n.count);
    let scratch = 0;
    if (n.op === 'attention') {
      const q = nodes[n.operands[0]], k = nodes[n.operands[1]];
      scratch = size(4 * q.dims[0] * k.dims[0]);
    }
    if (n.op === 'linear' && a8) {
      const x = nodes[n.operands[0]], k = x.dims[x.dims.length - 1], m = x.count / k;
      const kp = group ? Math.ceil(k / group) * group : k;
      scratch = size(m * kp) + size(4 * m) + size(4 * m * (group ? kp / group : 1));
    }
    if (live + scratch > best) { best = live + scratch; at = i; }
    for (const j of new Set(n.operands)) if (lastUse[j] === i && stored(j)) live -= size(4 * nodes[j].count);
    if (lastUse[i] === i && stored(i)) live -= size(4 * n.count);
  });
  return { best, at };
}

for (const b of builds) {
  const [impl, header] = b.split('=');
  const precision = impl.replace(/^qmc /, '');
  const raw = peak(false, precision), aligned = peak(true, precision);
  const m = readFileSync(header, 'utf8').match(/#define \w+_WORKSPACE_SIZE (\d+)/);
  const ws = m ? Number(m[1]) : NaN;
  const rec = {
    group: 'memory', case: 'tiny-gpt workspace', impl, threads: 0, status: m ? 'ok' : 'failed',
    workspace_bytes: ws, peak_live_bytes: raw.best, peak_live_aligned_bytes: aligned.best,
    ratio: ws / raw.best, goal: 'ratio<=1.5',
    note: `peak live at %${raw.at} ${nodes[raw.at].name} (${nodes[raw.at].op})`,
  };
  appendFileSync(out, JSON.stringify(rec) + '\n');
  console.log(`  tiny-gpt workspace       ${impl.padEnd(22)} workspace ${ws} B, peak live activations ${raw.best} B ` +
    `(${aligned.best} B 64-byte aligned): ${rec.ratio.toFixed(2)}x`);
}
