// cnn_e2e.mjs: a CNN end to end, ONNX Runtime's side (bench/cnn_e2e.sh):
// every item of a batch of inputs run through onnxruntime-node (f32), the
// outputs written as one .npy, and the first item timed as the compiled
// model's --bench times it (one warm-up run, then RUNS runs; min and
// median).
//
//   node cnn_e2e.mjs MODEL.onnx INPUT_NAME INPUTS.npy OUTPUTS.npy THREADS RUNS
//
// INPUTS.npy is float32 [N, ...item shape]. Session options:
// intraOpNumThreads = THREADS, interOpNumThreads 1, sequential execution,
// every graph optimization. Prints one JSON line: {"threads", "min_ms",
// "median_ms", "items"}.
import { readFileSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { join } from 'node:path';

const require = createRequire(join(process.cwd(), 'package.json'));
const ort = require('onnxruntime-node');

const [model, inputName, inPath, outPath, threads = '1', runs = '200'] = process.argv.slice(2);

// A little-endian C-order float32 .npy: its shape and data.
function readNpy(path) {
  const buf = readFileSync(path);
  const major = buf[6];
  const hlen = major >= 2 ? buf.readUInt32LE(8) : buf.readUInt16LE(8);
  const start = (major >= 2 ? 12 : 10) + hlen;
  const header = buf.subarray(0, start).toString('latin1');
  if (!header.includes("'<f4'") || header.includes("'fortran_order': True"))
    throw new Error(`${path}: expected C-order <f4`);
  const shape = header
    .match(/'shape': \(([^)]*)\)/)[1]
    .split(',')
    .filter((s) => s.trim())
    .map(Number);
  const data = new Float32Array(buf.buffer.slice(buf.byteOffset + start, buf.byteOffset + buf.length));
  return { shape, data };
}

function writeNpy(path, shape, data) {
  let header = `{'descr': '<f4', 'fortran_order': False, 'shape': (${shape.join(', ')}${shape.length === 1 ? ',' : ''}), }`;
  const pad = 64 - ((10 + header.length + 1) % 64);
  header += ' '.repeat(pad % 64) + '\n';
  const pre = Buffer.alloc(10);
  Buffer.from([0x93]).copy(pre, 0);
  pre.write('NUMPY', 1, 'latin1');
  pre[6] = 1;
  pre[7] = 0;
  pre.writeUInt16LE(header.length, 8);
  writeFileSync(path, Buffer.concat([pre, Buffer.from(header, 'latin1'), Buffer.from(data.buffer, data.byteOffset, data.byteLength)]));
}

const x = readNpy(inPath);
const items = x.shape[0], itemShape = x.shape.slice(1);
const per = itemShape.reduce((a, b) => a * b, 1);
const session = await ort.InferenceSession.create(model, {
  intraOpNumThreads: Number(threads),
  interOpNumThreads: 1,
  executionMode: 'sequential',
  graphOptimizationLevel: 'all',
});
const outName = session.outputNames[0];
const feed = (i) => ({ [inputName]: new ort.Tensor('float32', x.data.subarray(i * per, (i + 1) * per), itemShape) });
let outShape = null, outs = [];
for (let i = 0; i < items; i++) {
  const r = await session.run(feed(i));
  outShape = r[outName].dims;
  outs.push(Float32Array.from(r[outName].data));
}
const outPer = outs[0].length, all = new Float32Array(items * outPer);
outs.forEach((o, i) => all.set(o, i * outPer));
writeNpy(outPath, [items, ...outShape], all);

const f0 = feed(0);
await session.run(f0);
const times = [];
for (let i = 0; i < Number(runs); i++) {
  const t0 = process.hrtime.bigint();
  await session.run(f0);
  times.push(Number(process.hrtime.bigint() - t0) / 1e6);
}
times.sort((a, b) => a - b);
const h = times.length >> 1;
const median = times.length % 2 ? times[h] : (times[h - 1] + times[h]) / 2;
console.log(JSON.stringify({ threads: Number(threads), min_ms: times[0], median_ms: median, items }));
