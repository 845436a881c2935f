// scale_report.mjs: turns bench/scale.sh's records (results.jsonl: one "meta"
// record, an "input" record per checkpoint, a "compile" record per case) into
// Markdown tables on stdout and, with --markdown, the section
// "## Scale: compile time and memory" of docs/benchmarks.md: the section is
// replaced if present (up to the next "## " or "# " heading), appended if not;
// the rest of the file is kept.
//
//   node scale_report.mjs RESULTS.jsonl [--markdown DOC.md]
//
// The goals are issue 13's, judged on the rows this run has.
import { existsSync, readFileSync, writeFileSync } from 'node:fs';

const HEADING = '## Scale: compile time and memory';

const args = process.argv.slice(2);
const input = args[0];
const opt = {};
for (let i = 1; i < args.length; i += 2) opt[args[i].replace(/^--/, '')] = args[i + 1];

const all = readFileSync(input, 'utf8').split('\n').filter(Boolean).map((l) => JSON.parse(l));
const meta = Object.assign({}, ...all.filter((r) => r.kind === 'meta'));
const inputs = all.filter((r) => r.kind === 'input');
const compiles = all.filter((r) => r.kind === 'compile');
const inputOf = (model) => inputs.find((r) => r.model === model) ?? {};

// ---- formatting (GB = 10^9 bytes; /usr/bin/time's kbytes are KiB) -------------------
const num = (v, d) => (v === undefined || v === null || !Number.isFinite(v) ? '' : v.toFixed(d));
const bytes = (b) => (!b ? '' : b >= 1e9 ? `${num(b / 1e9, 2)} GB` : `${num(b / 1e6, 1)} MB`);
const rssBytes = (r) => (r.peak_rss_kb ? r.peak_rss_kb * 1024 : undefined);
const params = (p) => (p >= 1e9 ? `${num(p / 1e9, 2)} B` : `${num(p / 1e6, 1)} M`);
const secs = (s) => (s === undefined || s === null ? '' : s >= 100 ? num(s, 0) : num(s, s >= 10 ? 1 : 2));
const measured = (r) => r.wall_s !== undefined && r.peak_rss_kb > 0;
const esc = (s) => String(s).replace(/\|/g, '\\|');
const table = (header, align, rows) => [
  `| ${header.join(' | ')} |`,
  `| ${align.map((a) => (a === 'r' ? '---:' : '---')).join(' | ')} |`,
  ...rows.map((row) => `| ${row.map(esc).join(' | ')} |`),
];

// ---- the tables -----------------------------------------------------------------
const inputRows = inputs.map((r) =>
  r.status !== 'ok'
    ? [r.model, '', '', '', '', '', r.status]
    : [
      r.model, `${r.layout}: ${r.shape}`, params(r.params), r.dtype, String(r.files), bytes(r.bytes),
      `${secs(r.read_s)} s (${num(r.bytes / 1e9 / r.read_s, 1)} GB/s, ${num(100 * r.cached_before, 0)}% cached)`,
      r.gen_s === null ? 'kept' : `${secs(r.gen_s)} s, ${num(r.gen_rss_mb, 0)} MB RSS`,
    ]);

// where the time went, from the case's -v run (int4 cases): seconds reading,
// quantizing, measuring the error, packing and writing; the code
const st = (r) => r.stages ?? {};
const codeS = (r) => (st(r).module ?? 0) + (st(r).optimise ?? 0) + (st(r).machine_code ?? 0);
const stageText = (r) => (r.stages
  ? `${secs(st(r).read)} / ${secs(st(r).quantize)} / ${secs(st(r).error)} / ${secs(st(r).pack_write)}; ${secs(codeS(r))}`
  : '');

// (a case under 5 s is too short for the measure: the watchdog's polling counts as other work)
const busy = (r) => (r.bg_load >= 0.25 && r.wall_s >= 5 ? `; BUSY MACHINE (${r.bg_load} CPUs of other work)` : '');
const compileRows = compiles.map((r) => {
  const inp = inputOf(r.model);
  const m = measured(r);
  const status = r.status === 'ok' ? 'ok' : `${r.status}${r.message ? ': ' + r.message : ''}`;
  return [
    r.model, r.label, m ? secs(r.wall_s) : '', m && inp.read_s ? `${num(r.wall_s / inp.read_s, 1)}×` : '',
    m ? bytes(rssBytes(r)) : '', r.status === 'ok' ? bytes(r.obj_bytes + r.weights_bytes) : '',
    stageText(r), status + (m ? busy(r) : ''),
  ];
});

// ---- issue 13's goals ----------------------------------------------------------------
const goals = [];
const ofCase = (size, c) => compiles.filter((r) => r.model.endsWith(`-${size}`) && r.case === c);
const verdict = (ok) => (ok === undefined ? 'not measured' : ok ? '✓' : '**✗**');
const what = (r) => (measured(r) ? `${r.model}: ${secs(r.wall_s)} s, ${bytes(rssBytes(r))}` : `${r.model}: ${r.status}`);
const judged = (r, test) => (r.status === 'ok' ? test(r) : measured(r) && r.status !== 'ok' ? false : undefined);
function goal(text, rows, test, extra = () => '') {
  if (!rows.length) return goals.push([text, 'not run', verdict(undefined)]);
  for (const r of rows) goals.push([text, what(r) + extra(r), verdict(judged(r, test))]);
}
goal('1 B, f32 input, `int4`: peak RSS ≤ 1.5 GB, ≤ 60 s', ofCase('1b', 'int4'),
  (r) => rssBytes(r) <= 1.5e9 && r.wall_s <= 60);
// "quantize": the quantize part of the weights stage of the case's -v run
// (parameters and codes; not reading, error statistics, packing, writing)
const budget7b = (r) => 2 * (inputOf(r.model).read_s + st(r).quantize);
goal('7 B, bf16 sharded, `int4`: peak RSS ≤ 2 GB, time ≤ 2× (read once + quantize)', ofCase('7b', 'int4'),
  (r) => (rssBytes(r) > 2e9 ? false : st(r).quantize === undefined ? undefined : r.wall_s <= budget7b(r)),
  (r) => (!measured(r) ? '' : st(r).quantize === undefined
    ? ' (quantize time not measured)'
    : ` (2 × (${secs(inputOf(r.model).read_s)} s read once + ${secs(st(r).quantize)} s quantize) = ${secs(budget7b(r))} s)`));
for (const r1 of compiles.filter((r) => r.model.endsWith('-1b') && r.status === 'ok')) {
  const r0 = compiles.find((r) => r.model === r1.model.replace(/-1b$/, '-125m') && r.case === r1.case);
  if (!r0 || r0.status !== 'ok') continue;
  const ratio = r1.wall_s / r0.wall_s;
  goals.push([`time linear in size: 1 B / 125 M ≤ 10 (${r1.label})`,
    `${r1.model.replace(/-1b$/, '')}: ${secs(r1.wall_s)} s / ${secs(r0.wall_s)} s = ${num(ratio, 1)}`, verdict(ratio <= 10)]);
}
if (!goals.some((g) => g[0].startsWith('time linear'))) goals.push(['time linear in size: 1 B / 125 M ≤ 10', 'not run', verdict(undefined)]);
goal('1 B, `auto --budget-bits 4.5`: ≤ 15 min, ≤ 4 GB', ofCase('1b', 'auto-4.5'),
  (r) => r.wall_s <= 900 && rssBytes(r) <= 4e9);

// ---- output -----------------------------------------------------------------------
const md = [HEADING, ''];
md.push('Generated by `bench/scale.sh` (see `bench/README.md`, *Scale benchmark*); do not edit by hand.', '');
md.push(...table(['', ''], ['l', 'l'], [
  ['machine', meta.machine ?? '?'], ['date', meta.date ?? '?'], ['qmc commit', meta.commit ?? '?'],
  ['command', `bench/scale.sh ${meta.args ?? ''}`.trim()],
  ['limits', `${meta.timeout_s} s per case; killed when its resident set exceeds ${meta.max_rss_gb} GB`],
  ['run time', `${meta.elapsed_s ?? '?'} s (checkpoints and build included)`],
]), '');
md.push('**Method.** `bench/gen_checkpoint` writes each synthetic checkpoint once (deterministic, ~N(0, 0.02)',
  'weights): the gpt layout is tiny-gpt\'s names and model (`model.qm`, T = ' + (meta.seq ?? '?') + ' tokens), the',
  'llama layout Hugging Face\'s `LlamaForCausalLM` (7 B: bf16 in 5 GB shards with',
  '`model.safetensors.index.json`). *Read once* is one sequential read of its files (`dd`) as the page cache',
  'has them (*cached*: the part in the page cache before). Each case is `qmc compile model.qm --emit obj',
  '--precision P` under `/usr/bin/time -v`: wall time, *peak RSS* = its maximum resident set (mapped input',
  'pages included), *output* = the object plus the `--weights-file`. The int4 cases are compiled once more',
  'with `-v` for its stage table: seconds of the weights stage spent reading the checkpoint, quantizing',
  '(parameters and codes), measuring the error (only with `-v`) and packing and writing, and of the code',
  '(the LLVM module, optimisation, machine code). `auto` gets `--calib idx=` with',
  `${meta.calib_samples ?? '?'} random token sequences. GB = 10⁹ bytes. BUSY MACHINE: other processes used`,
  '0.25 CPU or more during the case (from `/proc/stat`); its time is unreliable, its memory is not.', '');
md.push('### Inputs', '');
md.push(...table(['model', 'shape', 'parameters', 'dtype', 'files', 'size', 'read once', 'generated'],
  ['l', 'l', 'r', 'l', 'r', 'r', 'l', 'l'], inputRows), '');
md.push('### Compile', '');
md.push(...table(['model', 'precision', 'wall s', '× read once', 'peak RSS', 'output',
  'weights: read / quantize / error / pack+write; code s', 'status'],
['l', 'l', 'r', 'r', 'r', 'r', 'r', 'l'], compileRows), '');
md.push('### Goals (issue 13)', '');
md.push(...table(['goal', 'measured', 'met'], ['l', 'l', 'l'], goals), '');
const section = md.join('\n');
process.stdout.write(section);

if (opt.markdown) {
  const doc = existsSync(opt.markdown) ? readFileSync(opt.markdown, 'utf8') : '# Benchmarks\n';
  writeFileSync(opt.markdown, replaceSection(doc, section));
  console.log(`scale_report: wrote the section "${HEADING.slice(3)}" of ${opt.markdown}`);
}

// The document with the scale section replaced (or appended).
function replaceSection(doc, text) {
  const lines = doc.split('\n');
  const start = lines.findIndex((l) => l.trim() === HEADING);
  if (start < 0) return doc.replace(/\n*$/, '\n\n') + text;
  let end = lines.findIndex((l, i) => i > start && /^##? /.test(l));
  if (end < 0) end = lines.length;
  const after = lines.slice(end).join('\n');
  return [...lines.slice(0, start), text.replace(/\n*$/, ''), ...(after ? ['', after] : [''])].join('\n');
}
