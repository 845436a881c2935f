// report.mjs: turns the run's records (results.jsonl: harness, e2e_ort.mjs,
// liveness.mjs) into the table on stdout, bench/results/latest.json and the
// Markdown report docs/benchmarks.md.
//
//   node report.mjs RESULTS.jsonl --json LATEST.json [--markdown DOC.md]
//        [--machine NAME] [--cores N] [--commit REV] [--elapsed SECONDS]
// (commit and elapsed default to run.sh's "run" record in RESULTS).
//
// Ratios use medians. A row with a `peer` is compared with that peer's row
// of the same case and thread count ("A|B": the faster of A and B):
//   goal time<=X  (GEMV)            ratio = qmc time / peer time, lower is better;
//   goal speed>=X (GEMM, end to end) ratio = peer time / qmc time (throughput
//                                    ratio), higher is better;
//   goal bytes<=X (GEMV of int3, int2, NF4; peer: qmc int4:g32)
//                                    ratio = time / (peer time * bytes / peer
//                                    bytes): the time over what its weight
//                                    bytes take at the int4 kernel's GB/s.
// Scaling rows: two threads' throughput over one thread's, GEMM M = 64.
import { existsSync, readFileSync, writeFileSync } from 'node:fs';

const args = process.argv.slice(2);
const input = args[0];
const opt = {};
for (let i = 1; i < args.length; i += 2) opt[args[i].replace(/^--/, '')] = args[i + 1];

const all = readFileSync(input, 'utf8').split('\n').filter(Boolean).map((l) => JSON.parse(l));
const meta = all.filter((r) => r.group === 'meta' && r.note);
const run = all.find((r) => r.group === 'meta' && r.case === 'run') ?? {};
opt.commit ??= run.commit;
opt.elapsed ??= run.elapsed_s;
const recs = all.filter((r) => r.group !== 'meta');
const ok = (r) => r && r.status === 'ok' && r.median_us > 0;

function findPeer(r) {
  const names = r.peer.split('|');
  const cands = recs.filter((p) => names.includes(p.impl) && p.case === r.case && p.threads === r.threads && ok(p));
  return cands.sort((a, b) => a.median_us - b.median_us)[0];
}

function judge(goal, ratio) {
  const m = goal && goal.match(/^(\w+)(<=|>=)([\d.]+)$/);
  if (!m || !Number.isFinite(ratio)) return undefined;
  return m[2] === '<=' ? ratio <= Number(m[3]) : ratio >= Number(m[3]);
}

for (const r of recs) {
  if (!r.peer || !ok(r)) continue;
  const p = findPeer(r);
  if (!p) continue;
  r.peer_used = p.impl;
  const time = r.goal && r.goal.startsWith('time');
  if (r.goal && r.goal.startsWith('bytes')) {
    const share = r.weight_bytes / p.weight_bytes;
    r.ratio = r.median_us / (p.median_us * share);
    r.ratio_min = r.min_us / (p.min_us * share);
    continue;
  }
  r.ratio = time ? r.median_us / p.median_us : p.median_us / r.median_us;
  r.ratio_min = time ? r.min_us / p.min_us : p.min_us / r.min_us;
}
// two threads over one, GEMM M = 64
for (const r of recs.filter((x) => x.group === 'gemm' && x.case.startsWith('gemm M=64') && x.threads === 2 && ok(x))) {
  const one = recs.find((x) => x.case === r.case && x.impl === r.impl && x.threads === 1 && ok(x));
  if (!one) continue;
  recs.push({
    group: 'scaling', case: r.case, impl: r.impl, threads: 2, status: 'ok', ratio: one.median_us / r.median_us,
    ratio_min: one.min_us / r.min_us, bg_load: Math.max(one.bg_load ?? 0, r.bg_load ?? 0),
    goal: r.impl.startsWith('qmc') ? 'speed>=1.8' : undefined, note: '2-thread throughput / 1-thread throughput',
  });
}
for (const r of recs) if (r.goal && r.ratio !== undefined) r.pass = judge(r.goal, r.ratio);

// ---- the table ---------------------------------------------------------------
const fmt = (v, d = 1) => (v === undefined || v === null || !Number.isFinite(v) ? '' : v.toFixed(d));
const goalText = (r) => (r.goal ? r.goal.replace('<=', ' ≤ ').replace('>=', ' ≥ ').replace('speed', 'thr') : '');
const mark = (r) => (r.pass === undefined ? '' : r.pass ? ' ✓' : ' ✗');
const threadsText = (r) => (r.group === 'scaling' ? '2/1' : r.threads ? String(r.threads) : '-');
const statusText = (r) => {
  if (r.group === 'memory') return `workspace ${r.workspace_bytes} B / peak live ${r.peak_live_bytes} B`;
  const parts = [];
  if (r.bg_load >= 0.1) parts.push(`BUSY MACHINE (${r.bg_load} CPUs of other work)`);
  if (r.status !== 'ok') parts.push(`${r.status.toUpperCase()}${r.note ? ': ' + r.note : ''}`);
  else if (r.group !== 'scaling' && r.note) parts.push(r.note);
  return parts.join('; ');
};
const order = ['machine', 'gemv', 'gemm', 'scaling', 'conv', 'e2e', 'memory'];
const rows = recs
  .map((r, i) => ({ r, i }))
  .sort((a, b) => order.indexOf(a.r.group) - order.indexOf(b.r.group) || a.i - b.i)
  .map(({ r }) => r);
const header = ['case', 'impl', 'thr', 'min µs', 'median µs', 'GB/s', 'GOP/s', 'ratio', 'of mins', 'goal', 'notes'];
const cells = rows.map((r) => [
  r.case, r.impl, threadsText(r), fmt(r.min_us), fmt(r.median_us), fmt(r.gbps, 2), fmt(r.gops, 1),
  fmt(r.ratio, 2), fmt(r.ratio_min, 2), goalText(r) + mark(r), statusText(r),
]);

const NOTES = header.length - 1;
const widths = header.map((h, c) => Math.max(h.length, ...cells.map((row) => Math.min(row[c].length, c === NOTES ? 60 : 99))));
const line = (row) => row.map((v, c) => (c >= 3 && c <= 8 ? v.padStart(widths[c]) : v.padEnd(widths[c]))).join('  ');
console.log('ratio (of medians; "of mins": the same of min times): GEMV rows qmc time / peer time (lower is');
console.log('better); GEMM, scaling and end-to-end rows throughput ratio = peer time / qmc time (higher is better);');
console.log('memory rows workspace / peak live. Goals are judged on the ratio of medians.');
console.log('Times are µs per run; GB/s = weight bytes (scales included) / median time; GOP/s = 2·M·N·K / median.\n');
console.log(line(header));
console.log(widths.map((w) => '-'.repeat(w)).join('  '));
for (const row of cells) console.log(line(row.map((v, c) => (c === NOTES && v.length > 60 ? v.slice(0, 57) + '...' : v))));

// ---- the goals -------------------------------------------------------------------
const goals = rows.filter((r) => r.goal && r.impl.startsWith('qmc'));
const missed = goals.filter((r) => r.pass === false);
const unmeasured = goals.filter((r) => r.pass === undefined);
console.log(`\ngoals: ${goals.length - missed.length - unmeasured.length} met, ${missed.length} missed, ` +
  `${unmeasured.length} not measured (unsupported, wrong or failed)`);
const busyRows = recs.filter((r) => r.bg_load >= 0.1).length;
if (busyRows) {
  console.log(`WARNING: ${busyRows} rows ran while other processes used 0.1 CPU or more (BUSY MACHINE): ` +
    're-run on a quiet machine before acting on them');
}

// ---- latest.json -----------------------------------------------------------------
const keep = ['case', 'impl', 'threads', 'min_us', 'median_us', 'gbps', 'gops', 'group', 'status', 'reps', 'ratio',
  'ratio_min',
  'peer_used', 'goal', 'pass', 'max_rel_err', 'weight_bytes', 'workspace_bytes', 'peak_live_bytes',
  'peak_live_aligned_bytes', 'bg_load', 'note'];
const json = rows.map((r) => Object.fromEntries(keep.filter((k) => r[k] !== undefined).map((k) => [k, r[k] ?? null])));
if (opt.json) writeFileSync(opt.json, JSON.stringify(json, null, 1) + '\n');

// ---- docs/benchmarks.md ------------------------------------------------------------
if (opt.markdown) {
  const esc = (s) => String(s).replace(/\|/g, '\\|');
  let thp = '';
  try {
    thp = readFileSync('/sys/kernel/mm/transparent_hugepage/enabled', 'utf8').trim();
  } catch { /* not Linux */ }
  const ortRec = recs.find((r) => r.impl?.startsWith('ORT') && r.note?.includes('onnxruntime-node'));
  const md = [];
  md.push('# Benchmarks', '');
  md.push('Generated by `bench/run.sh` (see `bench/README.md`); do not edit by hand. Every row below comes from one');
  md.push('run on one machine: qmc and oneDNN in the same process, ONNX Runtime in the same run.', '');
  md.push('| | |', '| --- | --- |');
  md.push(`| machine | ${esc(opt.machine ?? '?')}, ${opt.cores ?? '?'} cores |`);
  md.push(`| date | ${new Date().toISOString().replace(/\.\d+Z$/, 'Z')} |`);
  md.push(`| qmc commit | ${esc(opt.commit ?? '?')} |`);
  md.push(`| peers | ${esc(meta.map((m) => m.note).join(', ') || 'oneDNN')}; ` +
    `${esc(ortRec ? 'onnxruntime-node ' + (ortRec.note.match(/onnxruntime-node (\S+)/)?.[1] ?? '') : 'ONNX Runtime not run')} |`);
  md.push(`| transparent huge pages | ${esc(thp || '?')} |`);
  md.push(`| run time | ${opt.elapsed ?? '?'} s (build and compile included) |`);
  const busiest = Math.max(0, ...recs.map((r) => r.bg_load ?? 0));
  md.push(`| other processes | at most ${busiest.toFixed(2)} CPUs of other work during a case` +
    `${busiest >= 0.1 ? ' (rows marked BUSY MACHINE are unreliable)' : ''} |`, '');
  if (busyRows) {
    md.push(`**Warning: ${busyRows} rows ran while other processes used 0.1 CPU or more (marked BUSY MACHINE);`);
    md.push('their numbers, and ratios built on them, are unreliable.**', '');
  }
  md.push('**Method.** Each case runs 3 untimed warm-ups, then at least 20 timed runs (50 for GEMV) and 0.5 s');
  md.push('(0.25 s for GEMV) of timed work, or stops after 4 s (3 s); min and median are per run. GEMV rows are');
  md.push('*cold*: before each run the weights of the implementation being timed (qmc: its mapped weights file;');
  md.push('oneDNN: its reordered weights) are evicted with `clflushopt`, outside the timed region, and a shape\'s');
  md.push('implementations take turns (run by run at one thread, in blocks of 50 runs at two), so that other');
  md.push('tenants\' memory traffic falls on all alike. GEMM and tiny-gpt rows run warm, back to back, one');
  md.push('implementation after the other. qmc gets `qmc_set_num_threads(T)`, oneDNN (OpenMP)');
  md.push('`omp_set_num_threads(T)`, ONNX Runtime `intraOpNumThreads = T`. qmc outputs are checked against a');
  md.push('double-precision reference on the same quantized weights (the synthetic weights quantize losslessly):');
  md.push('a row whose error exceeds the tolerance is marked WRONG.', '');
  md.push('**Ratio.** GEMV: qmc time / oneDNN u8s8 time — lower is better. GEMM and tiny-gpt: peer time / qmc');
  md.push('time, the throughput ratio — higher is better (peer: oneDNN u8s8 for `:a8` builds, oneDNN f32 for the');
  md.push('others; end to end, ONNX Runtime\'s own build with the same weight and activation precision: `int8:a8` and');
  md.push('ORT\'s dynamic int8, `int4:g32` and ORT int4 acc0 (f32 compute), `int4:a8` and acc4; qmc\'s `int8`, with');
  md.push('f32-accurate activations, has no ORT build alike and shows its ratio to ORT\'s int8 without a goal). Scaling: 2-thread / 1-thread');
  md.push('throughput. Memory: workspace / largest set of simultaneously live activations. `ratio` compares');
  md.push('medians and decides the goals; `of mins` compares min times, which other work disturbs less.', '');
  md.push(`| ${header.join(' | ')} |`);
  md.push(`| ${header.map((_, c) => (c >= 2 && c <= 8 ? '---:' : '---')).join(' | ')} |`);
  for (const row of cells) md.push(`| ${row.map(esc).join(' | ')} |`);
  md.push('', '## Goals', '');
  md.push('| goal | case | impl | threads | ratio | met |', '| --- | --- | --- | ---: | ---: | --- |');
  for (const r of goals) {
    md.push(`| ${esc(goalText(r))} | ${esc(r.case)} | ${esc(r.impl)} | ${threadsText(r)} | ${fmt(r.ratio, 2)} | ` +
      `${r.pass === undefined ? r.status : r.pass ? 'yes' : '**no**'} |`);
  }
  md.push('', `${goals.length - missed.length - unmeasured.length} met, ${missed.length} missed, ` +
    `${unmeasured.length} not measured.`, '');
  // bench/scale.sh's section (scale_report.mjs) and bench/cnn_e2e.sh's are kept, at the end
  const old = existsSync(opt.markdown) ? readFileSync(opt.markdown, 'utf8').split('\n') : [];
  for (const title of ['## Scale: compile time and memory', '## Convolutional networks end to end']) {
    const start = old.findIndex((l) => l.trim() === title);
    if (start < 0) continue;
    let end = old.findIndex((l, i) => i > start && /^## /.test(l));
    if (end < 0) end = old.length;
    md.push(...old.slice(start, end));
  }
  writeFileSync(opt.markdown, md.join('\n'));
}
