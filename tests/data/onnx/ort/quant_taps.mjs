// quant_taps.mjs: ONNX Runtime's side of quant_taps.sh. Runs MODEL on
// val_tokens[128 s : 128 s + 128] for s in 0 .. SEQS-1 (one thread, all
// graph optimisations unless LEVEL is given) and writes every output as
// OUTDIR/ort.NAME.npy (float32; the sequences stacked along a new first
// dimension), NAME the output's name made an identifier as qmc does.
//   cd DIR_WITH_node_modules && node quant_taps.mjs QMC_SOURCE MODEL OUTDIR SEQS [LEVEL]
import { readFileSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { join } from 'node:path';
const require = createRequire(join(process.cwd(), 'package.json'));
const ort = require('onnxruntime-node');
const [src, model, outdir, seqs, level] = process.argv.slice(2);
const b = readFileSync(join(src, 'examples/tiny-gpt/val_tokens.npy'));
const start = 10 + b.readUInt16LE(8);
const tok = new Int32Array(b.buffer.slice(b.byteOffset + start, b.byteOffset + b.length));
const opts = { intraOpNumThreads: 1, interOpNumThreads: 1, executionMode: 'sequential', graphOptimizationLevel: level ?? 'all' };
const s = await ort.InferenceSession.create(model, opts);
const outs = {};
for (let q = 0; q < Number(seqs); q++) {
  const idx = new ort.Tensor('int64', BigInt64Array.from(tok.subarray(128 * q, 128 * q + 128), (v) => BigInt(v)), [1, 128]);
  for (const [k, v] of Object.entries(await s.run({ idx }))) (outs[k] ??= []).push(v);
}
for (const [k, vs] of Object.entries(outs)) {
  const name = k.replace(/^\//, '').replace(/_output_0$/, '').replace(/[^A-Za-z0-9_]/g, '_');
  const n = vs[0].data.length, all = new Float32Array(n * vs.length);
  vs.forEach((v, i) => all.set(v.data, i * n));
  const shape = [vs.length, ...vs[0].dims];
  let h = `{'descr': '<f4', 'fortran_order': False, 'shape': (${shape.join(', ')}), }`;
  while ((10 + h.length + 1) % 64) h += ' ';
  h += '\n';
  const head = Buffer.alloc(10);
  head.write('\x93NUMPY', 0, 'latin1'); head[6] = 1; head[7] = 0; head.writeUInt16LE(h.length, 8);
  writeFileSync(join(outdir, `ort.${name}.npy`), Buffer.concat([head, Buffer.from(h, 'latin1'), Buffer.from(all.buffer)]));
}
