#!/usr/bin/env node
// Logistic regression in plain JavaScript, with the optimizer (Adam) on a Descent server.
//
// Two Gaussian classes in 2-D, generated here from a seeded PRNG; the full-batch gradient
// of the mean binary cross-entropy is computed in JS and sent to the server, which holds
// the parameters [w0, w1, b] and answers each step with the new ones.
//
//   node examples/train.mjs --url http://127.0.0.1:8000     (or DESCENT_URL=...)
// Exits non-zero if the final accuracy is below 0.9.
import { parseArgs } from "node:util";

import { Session } from "../clients/js/src/index.js";

const { values: args } = parseArgs({
  options: {
    url: { type: "string", default: process.env.DESCENT_URL ?? "http://127.0.0.1:8000" },
    steps: { type: "string", default: "100" },
    seed: { type: "string", default: "1" },
  },
});

/** mulberry32: a small seeded PRNG, uniform in [0, 1). */
function mulberry32(seed) {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 2 ** 32;
  };
}

/** Standard normal samples by Box-Muller. */
function gaussian(uniform) {
  return () => Math.sqrt(-2 * Math.log(1 - uniform())) * Math.cos(2 * Math.PI * uniform());
}

/** n points per class: class 1 centred at (1.5, 1), class 0 at (-1.5, -1), unit variance. */
function makeData(n, seed) {
  const normal = gaussian(mulberry32(seed));
  const xs = [];
  const ys = [];
  for (const [label, cx, cy] of [[1, 1.5, 1], [0, -1.5, -1]]) {
    for (let i = 0; i < n; i++) {
      xs.push([cx + normal(), cy + normal()]);
      ys.push(label);
    }
  }
  return { xs, ys };
}

const sigmoid = (z) => 1 / (1 + Math.exp(-z));

/** Mean binary cross-entropy of p(y=1|x) = sigmoid(w.x + b), and its gradient in [w0, w1, b]. */
function lossAndGrad([w0, w1, b], { xs, ys }) {
  let loss = 0;
  const grad = [0, 0, 0];
  for (let i = 0; i < xs.length; i++) {
    const [x0, x1] = xs[i];
    const p = sigmoid(w0 * x0 + w1 * x1 + b);
    loss -= ys[i] ? Math.log(Math.max(p, 1e-12)) : Math.log(Math.max(1 - p, 1e-12));
    const r = p - ys[i]; // d loss_i / d logit
    grad[0] += r * x0;
    grad[1] += r * x1;
    grad[2] += r;
  }
  const n = xs.length;
  return { loss: loss / n, grad: grad.map((g) => g / n) };
}

function accuracy([w0, w1, b], { xs, ys }) {
  let right = 0;
  for (let i = 0; i < xs.length; i++) {
    right += Number((w0 * xs[i][0] + w1 * xs[i][1] + b > 0) === (ys[i] === 1));
  }
  return right / xs.length;
}

const data = makeData(200, Number(args.seed));
const steps = Number(args.steps);
const session = await Session.create(args.url, { optimizer: { name: "adam", lr: 0.05 }, params: [0, 0, 0] });
let params = (await session.params()).params;
try {
  for (let step = 1; step <= steps; step++) {
    const { loss, grad } = lossAndGrad(params, data);
    ({ params } = await session.step(grad));
    if (step % 10 === 0) console.log(`step ${String(step).padStart(3)}  loss ${loss.toFixed(4)}`);
  }
} finally {
  await session.delete();
}
const acc = accuracy(params, data);
console.log(`final loss: ${lossAndGrad(params, data).loss.toFixed(4)}`);
console.log(`final accuracy: ${acc.toFixed(2)}`);
process.exitCode = acc >= 0.9 ? 0 : 1;
