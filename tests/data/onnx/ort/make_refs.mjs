// make_refs.mjs: ONNX Runtime's outputs of the example models, the
// references tests/onnx/ort.sh compares qmc with. Run once with
// onnxruntime-node 1.30 (installed as bench/run.sh installs it):
//   cd DIR_WITH_node_modules && node /path/to/make_refs.mjs QMC_SOURCE
// Writes (float32 .npy) into tests/data/onnx/ort/:
//   lm-dev.seq0.npy   lm-dev.onnx on val_tokens[0:128] as int64 [1, 128]: logits [1, 128, 256]
//   digits.npy        digits-mlp.onnx on each of the 500 rows of test_x: [500, 1, 10]
// One thread, sequential execution, all graph optimisations.
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
  const ab = b.buffer.slice(b.byteOffset + start, b.byteOffset + b.length);
  if (hdr.includes("'<i8'")) return new BigInt64Array(ab);
  if (hdr.includes("'<i4'")) return new Int32Array(ab);
  return new Float32Array(ab);
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
const lm = await ort.InferenceSession.create(join(src, 'examples/tiny-gpt/lm-dev.onnx'), opts);
const tok = readNpy(join(src, 'examples/tiny-gpt/val_tokens.npy'));
const idx = new ort.Tensor('int64', BigInt64Array.from(tok.subarray(0, 128), (v) => BigInt(v)), [1, 128]);
const logits = (await lm.run({ idx })).logits;
writeNpy(join(out, 'lm-dev.seq0.npy'), logits.data, logits.dims);

const dg = await ort.InferenceSession.create(join(src, 'examples/digits/digits-mlp.onnx'), opts);
const x = readNpy(join(src, 'examples/digits/test_x.npy'));
const n = x.length / 64, all = new Float32Array(n * 10);
for (let i = 0; i < n; i++) {
  const r = await dg.run({ [dg.inputNames[0]]: new ort.Tensor('float32', x.slice(i * 64, i * 64 + 64), [1, 64]) });
  all.set(r[dg.outputNames[0]].data, i * 10);
}
writeNpy(join(out, 'digits.npy'), all, [n, 1, 10]);
console.log(`onnxruntime-node ${ort.env.versions?.common ?? ''}: wrote lm-dev.seq0.npy [${logits.dims}], digits.npy [${n}, 1, 10]`);
