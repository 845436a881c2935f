// make_quant_refs.mjs: ONNX Runtime's outputs of the pre-quantized models,
// the references tests/onnx/quant.sh compares qmc with. Run once with
// onnxruntime-node 1.30 (installed as bench/run.sh installs it):
//   cd DIR_WITH_node_modules && node /path/to/make_quant_refs.mjs QMC_SOURCE
// Writes (float32 .npy) into tests/data/onnx/ort/:
//   lm-dev.ort-dyn-int8.seq0.npy, lm-dev.ort-int4-b32-acc0.seq0.npy,
//   lm-dev.ort-int4-b32-acc4.seq0.npy: the peers of tests/data/onnx/lm-dev-peers
//     on val_tokens[0:128] as int64 [1, 128]: logits [1, 128, 256]
//   quant-qdq.npy, quant-nbits.npy, quant-nbits-acc4.npy, quant-nbits-f32.npy, quant-fp8.npy,
//   quant-dynamic.npy, quant-static.npy, quant-static-int4.npy, quant-qoperator.npy: the models of
//     tests/data/onnx/quant on their inputs (NAME.in.x.npy)
// One thread, sequential execution; all graph optimisations for the peers
// (the same outputs as none, within 5e-8 of the range), the basic ones for
// the quant models: beyond them ONNX Runtime fuses a DequantizeLinear ->
// MatMul of a float input into a product that quantizes the input to int8
// at run time, which changes qdq.onnx's outputs by 3e-3 of their range.
import { readFileSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { join } from 'node:path';
const require = createRequire(join(process.cwd(), 'package.json'));
const ort = require('onnxruntime-node');
const src = process.argv[2];
const opts = { intraOpNumThreads: 1, interOpNumThreads: 1, executionMode: 'sequential', graphOptimizationLevel: 'all' };

function readNpy(path) {
  const b = readFileSync(path);
  const hlen = b.readUInt16LE(8), start = 10 + hlen;
  const hdr = b.subarray(0, start).toString('latin1');
  const shape = hdr.match(/'shape': \(([^)]*)\)/)[1].split(',').filter((s) => s.trim()).map(Number);
  const ab = b.buffer.slice(b.byteOffset + start, b.byteOffset + b.length);
  if (hdr.includes("'<i8'")) return { data: new BigInt64Array(ab), shape };
  if (hdr.includes("'<i4'")) return { data: new Int32Array(ab), shape };
  return { data: new Float32Array(ab), shape };
}

function writeNpy(path, data, shape) {
  let h = `{'descr': '<f4', 'fortran_order': False, 'shape': (${shape.join(', ')}${shape.length === 1 ? ',' : ''}), }`;
  while ((10 + h.length + 1) % 64) h += ' ';
  h += '\n';
  const head = Buffer.alloc(10);
  head.write('\x93NUMPY', 0, 'latin1');
  head[6] = 1; head[7] = 0; head.writeUInt16LE(h.length, 8);
  writeFileSync(path, Buffer.concat([head, Buffer.from(h, 'latin1'), Buffer.from(data.buffer, data.byteOffset, data.byteLength)]));
}

const out = join(src, 'tests/data/onnx/ort');
const tok = readNpy(join(src, 'examples/tiny-gpt/val_tokens.npy')).data;
const idx = new ort.Tensor('int64', BigInt64Array.from(tok.subarray(0, 128), (v) => BigInt(v)), [1, 128]);
for (const peer of ['ort-dyn-int8', 'ort-int4-b32-acc0', 'ort-int4-b32-acc4']) {
  const s = await ort.InferenceSession.create(join(src, `tests/data/onnx/lm-dev-peers/lm-dev.${peer}.onnx`), opts);
  const logits = (await s.run({ idx })).logits;
  writeNpy(join(out, `lm-dev.${peer}.seq0.npy`), logits.data, logits.dims);
  console.log(`lm-dev.${peer}: [${logits.dims}]`);
}
for (const name of ['qdq', 'nbits', 'nbits-acc4', 'nbits-f32', 'fp8', 'dynamic', 'static', 'static-int4', 'qoperator']) {
  const dir = join(src, 'tests/data/onnx/quant');
  const s = await ort.InferenceSession.create(join(dir, `${name}.onnx`), { ...opts, graphOptimizationLevel: 'basic' });
  const x = readNpy(join(dir, `${name}.in.x.npy`));
  const y = (await s.run({ x: new ort.Tensor('float32', x.data, x.shape) })).y;
  writeNpy(join(out, `quant-${name}.npy`), y.data, y.dims);
  console.log(`quant-${name}: [${y.dims}]`);
}
console.log(`onnxruntime-node ${ort.env.versions?.common ?? ''}`);
