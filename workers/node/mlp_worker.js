#!/usr/bin/env node
// An MLP forward and backward in JavaScript, served over backprop-harness's worker
// protocol (docs/worker-protocol.md): a JSON line per message on stdin/stdout, each
// array a raw little-endian buffer after its line. Copy it to start a worker in any
// language: read a line, read the buffers it lists, answer with the same id.
//
//     backprop-harness check --impl 'cmd:node workers/node/mlp_worker.js'
"use strict";

const TYPES = { "<f4": Float32Array, "<f8": Float64Array, "<i8": BigInt64Array };
const ACTS = {
  identity: [(z) => z, () => 1],
  relu: [(z) => (z > 0 ? z : 0), (a) => (a > 0 ? 1 : 0)],
  leaky_relu: [(z) => (z > 0 ? z : 0.01 * z), (a) => (a > 0 ? 1 : 0.01)],
  tanh: [Math.tanh, (a) => 1 - a * a],
  sigmoid: [(z) => (z >= 0 ? 1 / (1 + Math.exp(-z)) : Math.exp(z) / (1 + Math.exp(z))), (a) => a * (1 - a)],
};
const models = new Map();
let nextModel = 0;

// --- the MLP: layer l computes z = a W^T + b, a' = act(z); W is (out, in), row-major.
function step(m, x, y, n, wantGrads) {
  const Type = m.Type, acts = [x];
  m.sizes.slice(1).forEach((out, l) => {
    const inp = m.sizes[l], a = acts[l], [W, b] = m.params[l], z = new Type(n * out);
    for (let i = 0; i < n; i++)
      for (let j = 0; j < out; j++) {
        let s = b[j];
        for (let k = 0; k < inp; k++) s += a[i * inp + k] * W[j * inp + k];
        z[i * out + j] = ACTS[m.activations[l]][0](s);
      }
    acts.push(z);
  });
  const out = m.sizes[m.sizes.length - 1], o = acts[acts.length - 1];
  let delta = new Type(n * out), loss = 0;
  if (m.loss === "cross_entropy") { // softmax and mean negative log-likelihood, max subtracted
    for (let i = 0; i < n; i++) {
      const row = o.subarray(i * out, (i + 1) * out), top = Math.max(...row), label = Number(y[i]);
      const sum = row.reduce((s, v) => s + Math.exp(v - top), 0);
      loss += Math.log(sum) + top - row[label];
      row.forEach((v, j) => { delta[i * out + j] = (Math.exp(v - top) / sum - (j === label)) / n; });
    }
    loss /= n;
  } else { // mean squared error over every element
    for (let e = 0; e < n * out; e++) { const d = o[e] - y[e]; loss += d * d; delta[e] = (2 * d) / (n * out); }
    loss /= n * out;
  }
  if (!wantGrads) return { loss };
  const grads = [];
  for (let l = m.params.length - 1; l >= 0; l--) {
    const inp = m.sizes[l], width = m.sizes[l + 1], a = acts[l], [W] = m.params[l];
    const gW = new Type(width * inp), gb = new Type(width), below = new Type(n * inp);
    for (let e = 0; e < n * width; e++) delta[e] *= ACTS[m.activations[l]][1](acts[l + 1][e]); // dz
    for (let j = 0; j < width; j++) {
      let db = 0;
      for (let i = 0; i < n; i++) db += delta[i * width + j];
      gb[j] = db;
      for (let k = 0; k < inp; k++) {
        let dw = 0;
        for (let i = 0; i < n; i++) dw += delta[i * width + j] * a[i * inp + k];
        gW[j * inp + k] = dw;
      }
    }
    for (let i = 0; i < n; i++)
      for (let k = 0; k < inp; k++) {
        let s = 0;
        for (let j = 0; j < width; j++) s += delta[i * width + j] * W[j * inp + k];
        below[i * inp + k] = s;
      }
    grads.unshift([[gW, [width, inp]], [gb, [width]]]);
    delta = below;
  }
  return { loss, grads, dx: delta };
}

// --- the protocol -----------------------------------------------------------------
const dtypeOf = (array) => Object.keys(TYPES).find((k) => array instanceof TYPES[k]);

function send(answer, arrays = []) { // arrays: [TypedArray, shape] leaves, {"buffer": k} in the JSON
  answer.buffers = arrays.map(([a, shape]) => ({ dtype: dtypeOf(a), shape, nbytes: a.byteLength }));
  process.stdout.write(JSON.stringify(answer) + "\n");
  for (const [a] of arrays) process.stdout.write(Buffer.from(a.buffer, a.byteOffset, a.byteLength));
}

function leaf(arrays, array, shape) { arrays.push([array, shape]); return { buffer: arrays.length - 1 }; }

function answer(msg) {
  const input = msg.input || {};
  if (msg.kind === "start")
    return send({ id: msg.id, tool: "node-mlp", config: { protocol: "backprop-harness-worker/1", arrays: "buffer",
      description: "an MLP in JavaScript (workers/node)", capabilities: { dtypes: ["float32", "float64"], input_grad: true } } });
  if (msg.kind === "define") {
    for (const id of input.release || []) models.delete(id);
    const { sizes, activations, loss } = input.network;
    models.set(++nextModel, { sizes, activations, loss, params: input.params, Type: TYPES[input.dtype === "float32" ? "<f4" : "<f8"] });
    return send({ id: msg.id, success: true, output: { model: nextModel } });
  }
  if (msg.kind !== "evaluate") return send({ id: msg.id });
  const m = models.get(input.model);
  if (!m) return send({ id: msg.id, success: false, error: `no model ${input.model}` });
  if (input.params) m.params = input.params;
  const n = input.x.length / m.sizes[0], timings = [], out = [];
  let result, runs = 0, spent = 0;
  do { // "time" runs the step min_runs times and for min_seconds; the others once
    const t0 = process.hrtime.bigint();
    result = step(m, input.x, input.y, n, msg.function !== "forward");
    const ns = process.hrtime.bigint() - t0;
    timings.push({ name: "evaluate", nanoseconds: Number(ns) });
    runs++; spent += Number(ns) / 1e9;
  } while (msg.function === "time" && (runs < (input.min_runs || 1) || spent < (input.min_seconds || 0)));
  const output = { loss: leaf(out, m.Type.of(result.loss), []) };
  if (msg.function === "step") {
    output.grads = result.grads.map((pair) => pair.map(([a, shape]) => leaf(out, a, shape)));
    output.dx = leaf(out, result.dx, [n, m.sizes[0]]);
    if (input.return_inputs) output.inputs = { // what the step saw, after it: a changed input shows
      params: m.params.map(([W, b], l) => [leaf(out, W, [m.sizes[l + 1], m.sizes[l]]), leaf(out, b, [m.sizes[l + 1]])]),
      x: leaf(out, input.x, [n, m.sizes[0]]),
      y: leaf(out, input.y, m.loss === "mse" ? [n, m.sizes[m.sizes.length - 1]] : [n]),
    };
  }
  send({ id: msg.id, success: true, output, timings }, out);
}

// Arrays arrive as {"buffer": k}: swap in typed arrays over the bytes after the line.
function arraysIn(value, buffers) {
  if (Array.isArray(value)) return value.map((v) => arraysIn(v, buffers));
  if (value && typeof value === "object") {
    if ("buffer" in value) return buffers[value.buffer];
    return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, arraysIn(v, buffers)]));
  }
  return value;
}

let pending = Buffer.alloc(0);
process.stdin.on("data", (chunk) => {
  pending = Buffer.concat([pending, chunk]);
  for (;;) {
    const end = pending.indexOf(10); // "\n"
    if (end < 0) return;
    const msg = JSON.parse(pending.subarray(0, end).toString());
    const sizes = (msg.buffers || []).map((d) => d.nbytes);
    if (pending.length < end + 1 + sizes.reduce((s, b) => s + b, 0)) return; // the buffers are still coming
    let at = end + 1;
    const buffers = (msg.buffers || []).map((d) => { // copied: typed arrays need aligned offsets
      const bytes = new Uint8Array(pending.subarray(at, (at += d.nbytes)));
      return new TYPES[d.dtype](bytes.buffer);
    });
    pending = pending.subarray(at);
    answer(arraysIn(msg, buffers));
  }
});
