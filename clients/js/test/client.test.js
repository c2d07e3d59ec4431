// The JS client against a live server: DESCENT_URL (any server), plus DESCENT_AUTH_URL and
// DESCENT_API_KEY (a server started with DESCENT_API_KEYS) for the API-key tests.
// tests/clients/test_js.py starts both and runs this file; by hand:
//   DESCENT_URL=http://127.0.0.1:8000 DESCENT_AUTH_URL=... DESCENT_API_KEY=... node --test clients/js/test/
import assert from "node:assert/strict";
import { describe, test } from "node:test";

import {
  Busy, DescentError, Forbidden, InvalidInput, NetworkError, NotFound, PreconditionFailed, ResponseLost,
  Session, Unauthorized, listOptimizers,
} from "../src/index.js";

function required(name) {
  const value = process.env[name];
  if (!value) {
    throw new Error(`${name} is not set: these tests need a live Descent server (see the comment at the top of ${import.meta.url})`);
  }
  return value;
}

const URL = required("DESCENT_URL");
const FAST_RETRY = { attempts: 4, backoffMs: 1, maxBackoffMs: 5 };

/** Deterministic pseudo-random numbers in [-1, 1) (mulberry32). */
function prng(seed) {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return (((t ^ (t >>> 14)) >>> 0) / 2 ** 32) * 2 - 1;
  };
}

function vector(random, n) {
  return Array.from({ length: n }, random);
}

/** Asserts |actual - expected| <= rel * max(|expected|, 1e-30) elementwise. */
function assertClose(actual, expected, rel) {
  assert.equal(actual.length, expected.length);
  for (let i = 0; i < expected.length; i++) {
    const tolerance = rel * Math.max(Math.abs(expected[i]), 1e-30);
    assert.ok(Math.abs(actual[i] - expected[i]) <= tolerance, `[${i}] ${actual[i]} vs ${expected[i]}`);
  }
}

async function rejects(promise, ErrorClass, check = () => {}) {
  await assert.rejects(promise, (error) => {
    assert.ok(error instanceof ErrorClass, `expected ${ErrorClass.name}, got ${error?.name}: ${error?.message}`);
    assert.ok(error instanceof DescentError);
    check(error);
    return true;
  });
}

// -- fetch wrappers that lose what we tell them to -----------------------------------------

function socketError(code) {
  return new TypeError("fetch failed", { cause: Object.assign(new Error(code), { code }) });
}

/** A fetch that fails the next `plan` calls: "lost" (sent and applied, answer dropped),
 * "unsent" (connection refused), or 503 (a Busy answer without reaching the server). */
function flakyFetch(plan) {
  const calls = [];
  const fetchFn = async (url, init) => {
    calls.push(`${init.method} ${new globalThis.URL(url).pathname}`);
    const fault = plan.shift();
    if (fault === "unsent") throw socketError("ECONNREFUSED");
    if (fault === 503) {
      return new Response(JSON.stringify({ type: "/problems/busy", title: "Busy", status: 503, detail: "busy" }),
        { status: 503, headers: { "content-type": "application/problem+json", "retry-after": "0" } });
    }
    const response = await fetch(url, init);
    if (fault === "lost") {
      await response.arrayBuffer();
      throw socketError("UND_ERR_SOCKET");
    }
    return response;
  };
  return { fetch: fetchFn, calls };
}

// -- the calls ---------------------------------------------------------------------------------

test("listOptimizers names every optimizer with its defaults and state names", async () => {
  const optimizers = await listOptimizers(URL);
  const adam = optimizers.find((o) => o.name === "adam");
  assert.ok(adam, "adam is listed");
  assert.deepEqual(adam.state.slice(0, 2), ["exp_avg", "exp_avg_sq"]);
  assert.equal(adam.hyperparameters.find((h) => h.name === "lr").default, 0.001);
  for (const name of ["sgd", "adamw", "rmsprop", "lion", "yogi"]) {
    assert.ok(optimizers.some((o) => o.name === name), name);
  }
});

describe("sgd, server-held", () => {
  for (const dtype of ["float32", "float64"]) {
    test(`${dtype}: create, step, params, describe, delete`, async () => {
      const Vector = dtype === "float32" ? Float32Array : Float64Array;
      const round = dtype === "float32" ? Math.fround : (x) => x;
      const p0 = [1.5, -2.25, 3.125, 0.1];
      const g = [0.5, -0.25, 1.0, 0.3];
      const session = await Session.create(URL, { optimizer: { name: "sgd", lr: 0.1 }, params: p0, dtype });
      assert.equal(session.dtype, dtype);
      assert.equal(session.dim, 4);
      assert.equal(session.serverHeld, true);
      assert.equal(session.info.optimizer.momentum, 0); // torch's default, echoed
      assert.equal(session.token.length > 10, true);

      const { params, step, skipped } = await session.step(g);
      assert.ok(params instanceof Vector);
      assert.equal(step, 1);
      assert.equal(skipped, false);
      // p - lr * g in the session's dtype (torch rounds through one fma; 1 ulp of slack)
      const lr = round(0.1);
      const expected = p0.map((p, i) => round(round(p) - lr * round(g[i])));
      assertClose(params, expected, dtype === "float32" ? 2 ** -23 : 2 ** -52);

      const held = await session.params();
      assert.deepEqual(held, { params, step: 1 });
      const info = await session.describe();
      assert.equal(info.step, 1);
      assert.equal(info.token, undefined);

      await session.delete();
      await rejects(session.describe(), NotFound, (e) => assert.equal(e.status, 404));
      await rejects(session.delete(), NotFound);
    });
  }
});

test("adam float64, client-held: one step matches the closed form", async () => {
  const [lr, b1, b2, eps] = [0.01, 0.8, 0.95, 1e-6];
  const session = await Session.create(URL, {
    optimizer: { name: "adam", lr, betas: [b1, b2], eps }, dim: 5, dtype: "float64",
  });
  assert.equal(session.serverHeld, false);
  const random = prng(7);
  const p0 = vector(random, 5);
  const g = vector(random, 5);
  await assert.rejects(session.step(g), TypeError); // the client holds the params: they must be sent
  await assert.rejects(session.step([1, 2], { params: p0 }), RangeError);

  const { params, step } = await session.step(g, { params: p0 });
  assert.equal(step, 1);
  // torch's _single_tensor_adam, step 1: m = (1-b1) g, v = (1-b2) g^2,
  // p -= lr / (1-b1) * m / (sqrt(v) / sqrt(1-b2) + eps)
  const expected = p0.map((p, i) => {
    const m = (1 - b1) * g[i];
    const v = (1 - b2) * g[i] * g[i];
    return p - (lr / (1 - b1)) * (m / (Math.sqrt(v) / Math.sqrt(1 - b2) + eps));
  });
  assertClose(params, expected, 1e-14);
  await session.delete();
});

describe("binary and JSON encodings give identical results", () => {
  for (const dtype of ["float32", "float64"]) {
    test(dtype, async () => {
      const optimizer = { name: "adamw", lr: 0.05, weight_decay: 0.1, amsgrad: true };
      const random = prng(42);
      const p0 = vector(random, 33);
      const binary = await Session.create(URL, { optimizer, params: p0, dtype });
      const json = await Session.create(URL, { optimizer, params: p0, dtype, encoding: "json" });
      assert.equal(binary.encoding, "binary");
      assert.equal(json.encoding, "json");
      for (let k = 0; k < 25; k++) {
        const g = vector(random, 33);
        const a = await binary.step(g);
        const b = await json.step(g);
        assert.deepEqual(a, b, `step ${k + 1}`);
      }
      assert.deepEqual((await binary.params()).params, (await json.params()).params);
      assert.deepEqual((await binary.state()).state, (await json.state()).state);

      // A client-held session, params sent with each step, in both encodings.
      const free = await Session.create(URL, { optimizer, dim: 33, dtype, encoding: "json" });
      const freeBinary = await Session.attach(URL, free.id, free.token, { dtype });
      const g = vector(random, 33);
      const viaJson = await free.step(g, { params: p0 });
      const freeBinary2 = await Session.create(URL, { optimizer, dim: 33, dtype });
      const viaBinary = await freeBinary2.step(g, { params: p0 });
      assert.deepEqual(viaJson.params, viaBinary.params);
      await rejects(freeBinary.step(g, { params: p0 }), PreconditionFailed); // it saw step 0; now 1
      for (const s of [binary, json, free, freeBinary2]) await s.delete();
    });
  }
});

test("state() and loadState() checkpoint and resume a run exactly", async () => {
  const random = prng(3);
  const session = await Session.create(URL, { optimizer: { name: "adam", lr: 0.02 }, params: vector(random, 6) });
  const grads = Array.from({ length: 5 }, () => vector(random, 6));
  for (const g of grads.slice(0, 3)) await session.step(g);
  const checkpoint = await session.state();
  assert.equal(checkpoint.step, 3);
  assert.deepEqual(Object.keys(checkpoint.state).sort(), ["exp_avg", "exp_avg_sq"]);
  assert.ok(checkpoint.state.exp_avg instanceof Float32Array);
  assert.ok(checkpoint.params instanceof Float32Array);

  const first = [];
  for (const g of grads.slice(3)) first.push(await session.step(g));
  const loaded = await session.loadState(checkpoint);
  assert.equal(loaded.step, 3);
  assert.equal(session.stepCount, 3); // so the next conditional step expects 3
  assert.deepEqual(loaded.state, checkpoint.state);
  const again = [];
  for (const g of grads.slice(3)) again.push(await session.step(g));
  assert.deepEqual(again, first);
  assert.deepEqual(first.map((r) => r.step), [4, 5]);
  await session.delete();
});

test("patch changes a hyperparameter mid-run", async () => {
  const session = await Session.create(URL, { optimizer: { name: "sgd", lr: 0.1 }, params: [1, 1], dtype: "float64" });
  await session.step([1, -1]);
  const info = await session.patch({ lr: 0.5 });
  assert.equal(info.optimizer.lr, 0.5);
  assert.equal(info.optimizer.name, "sgd");
  const { params } = await session.step([1, -1]);
  assertClose(params, [1 - 0.1 - 0.5, 1 + 0.1 + 0.5], 1e-15);
  await rejects(session.patch({ lr: -1 }), InvalidInput, (e) => assert.equal(e.field, "optimizer.lr"));
  assert.equal((await session.describe()).optimizer.lr, 0.5); // the rejected patch changed nothing
  await session.delete();
});

// -- typed errors ---------------------------------------------------------------------------

describe("errors carry the problem details", () => {
  test("422: bad hyperparameter, unknown optimizer, non-finite gradient", async () => {
    await rejects(Session.create(URL, { optimizer: { name: "sgd", lr: -0.1 }, dim: 2 }), InvalidInput, (e) => {
      assert.equal(e.status, 422);
      assert.equal(e.field, "optimizer.lr");
      assert.match(e.detail, /Invalid learning rate: -0.1/); // torch's message
      assert.equal(e.problem.type, "/problems/invalid-input");
    });
    await rejects(Session.create(URL, { optimizer: { name: "nope" }, dim: 2 }), InvalidInput,
      (e) => assert.equal(e.field, "optimizer.name"));
    for (const encoding of ["binary", "json"]) {
      const session = await Session.create(URL, { optimizer: "sgd", params: [0, 0], encoding });
      await rejects(session.step([NaN, 1]), InvalidInput);
      assert.equal((await session.describe()).step, 0); // rejected: nothing changed
      await session.delete();
    }
  });

  test("401, 403, 404", async () => {
    const a = await Session.create(URL, { optimizer: "sgd", params: [0] });
    const b = await Session.create(URL, { optimizer: "sgd", params: [0] });
    await rejects(Session.attach(URL, a.id, "garbage"), Unauthorized, (e) => assert.equal(e.status, 401));
    await rejects(Session.attach(URL, a.id, b.token), Forbidden, (e) => assert.equal(e.status, 403));
    await rejects(Session.attach(URL, "no-such-session", a.token), NotFound, (e) => {
      assert.equal(e.status, 404);
      assert.match(e.message, /^404 No such session: /);
    });
    const attached = await Session.attach(URL, a.id, a.token, { dtype: "float32", dim: 1 });
    assert.equal(attached.stepCount, 0);
    await rejects(Session.attach(URL, a.id, a.token, { dtype: "float64" }), DescentError, (e) => assert.equal(e.status, undefined));
    await a.delete();
    await b.delete();
  });

  test("412: If-Match conflicts change nothing", async () => {
    const session = await Session.create(URL, { optimizer: { name: "sgd", lr: 0.1 }, params: [1, 2], dtype: "float64" });
    await rejects(session.step([1, 1], { ifMatch: 5 }), PreconditionFailed, (e) => {
      assert.equal(e.status, 412);
      assert.equal(e.problem.step, 0);
    });
    assert.deepEqual(await session.params(), { params: new Float64Array([1, 2]), step: 0 });

    // Two clients on one session: the one that did not see the other's step gets 412 ...
    const other = await Session.attach(URL, session.id, session.token);
    await session.step([1, 1]);
    await rejects(other.step([1, 1]), PreconditionFailed, (e) => assert.equal(e.problem.step, 1));
    // ... until it catches up, or steps unconditionally.
    await other.describe();
    assert.equal((await other.step([1, 1])).step, 2);
    assert.equal((await session.step([1, 1], { ifMatch: false })).step, 3);
    assert.equal((await session.step([1, 1], { ifMatch: 3 })).step, 4);
    await session.delete();
  });

  test("API keys: 401 without one, created with one", async () => {
    const authUrl = required("DESCENT_AUTH_URL");
    const apiKey = required("DESCENT_API_KEY");
    await rejects(Session.create(authUrl, { optimizer: "sgd", dim: 2 }), Unauthorized);
    await rejects(Session.create(authUrl, { optimizer: "sgd", dim: 2, apiKey: "wrong" }), Unauthorized);
    const session = await Session.create(authUrl, { optimizer: "sgd", dim: 2, apiKey });
    assert.equal((await session.step([1, 1], { params: [0, 0] })).step, 1);
    await session.delete();
  });
});

// -- retries ------------------------------------------------------------------------------

describe("retries never apply a step twice", () => {
  test("a lost step response (server-held): recovered, applied once", async () => {
    const plan = [];
    const lossy = flakyFetch(plan);
    const session = await Session.create(URL, {
      optimizer: { name: "sgd", lr: 0.5 }, params: [1, 1], dtype: "float64", fetch: lossy.fetch, retry: FAST_RETRY,
    });
    lossy.calls.length = 0;
    plan.push("lost");
    const { params, step } = await session.step([1, -1]);
    assert.equal(step, 1);
    assert.deepEqual(params, new Float64Array([0.5, 1.5]));
    const path = `/v1/sessions/${session.id}`;
    assert.deepEqual(lossy.calls, [`POST ${path}/step`, `GET ${path}`, `GET ${path}/params`]);
    assert.equal((await session.describe()).step, 1);
    await session.delete();
  });

  test("a lost step response (client-held): ResponseLost, applied once", async () => {
    const plan = [];
    const lossy = flakyFetch(plan);
    const session = await Session.create(URL, { optimizer: "sgd", dim: 2, fetch: lossy.fetch, retry: FAST_RETRY });
    plan.push("lost");
    await rejects(session.step([1, 1], { params: [0, 0] }), ResponseLost, (e) => assert.equal(e.step, 1));
    assert.equal((await session.describe()).step, 1);
    await session.delete();
  });

  test("a lost unconditional step is not resent", async () => {
    const plan = [];
    const lossy = flakyFetch(plan);
    const session = await Session.create(URL, { optimizer: "sgd", params: [0], fetch: lossy.fetch, retry: FAST_RETRY });
    plan.push("lost");
    await rejects(session.step([1], { ifMatch: false }), NetworkError, (e) => assert.equal(e.cause.cause.code, "UND_ERR_SOCKET"));
    assert.equal((await session.describe()).step, 1);
    await session.delete();
  });

  test("unsent requests and 503 are retried; idempotent calls retry lost responses", async () => {
    const plan = ["unsent", 503];
    const flaky = flakyFetch(plan);
    const session = await Session.create(URL, { optimizer: "sgd", params: [0, 0], dtype: "float64", fetch: flaky.fetch, retry: FAST_RETRY });
    assert.equal(flaky.calls.length, 3);
    plan.push("unsent", 503, "unsent");
    assert.equal((await session.step([1, 1])).step, 1);
    plan.push("lost", "unsent");
    assert.deepEqual((await session.params()).params, new Float64Array([-0.001, -0.001]));
    plan.push(503, 503, 503, 503);
    await rejects(session.step([1, 1]), Busy); // attempts exhausted: the last answer is the error
    assert.equal((await session.describe()).step, 1);
    plan.push("lost");
    await session.delete(); // the first attempt deleted it; the retry's 404 means done
    await rejects(session.describe(), NotFound);
  });

  test("no server: NetworkError after the retries", async () => {
    await rejects(listOptimizers("http://127.0.0.1:9", { retry: FAST_RETRY }), NetworkError,
      (e) => assert.equal(e.status, undefined));
  });
});
