/**
 * Descent client for JavaScript (Node 20+ and browsers): `fetch` and typed arrays, no dependencies.
 *
 * Vectors travel as raw little-endian bytes of the session's dtype by default
 * (`encoding: "binary"`), or as JSON arrays (`encoding: "json"`); both give bit-identical
 * results, since a JS number holds every float32 and float64 value exactly.
 *
 * Retry rule. GET, PUT state, PATCH and DELETE are idempotent: retried with exponential
 * backoff on network errors and 5xx. POST (create, step) is retried only where that cannot
 * apply it twice: when the connection never opened, on 503 (the server says nothing
 * changed), and, for a step sent with `If-Match: "<n>"` (the default: the step count this
 * client last saw), after an ambiguous failure (connection lost after sending, other 5xx):
 * the client asks the server for its step count; past `n` means the step landed (its
 * parameters are fetched again for server-held sessions, else `ResponseLost`), still `n`
 * means it did not and it is sent again -- If-Match makes that resend harmless too.
 *
 * @module descent-client
 */

const OCTET = "application/octet-stream";
const JSON_TYPE = "application/json";
const ARRAYS = { float32: Float32Array, float64: Float64Array };
const LITTLE_ENDIAN = new Uint8Array(new Uint16Array([1]).buffer)[0] === 1;
// undici (Node's fetch) error codes meaning the connection never opened, so nothing was sent.
const UNSENT_CODES = new Set([
  "ECONNREFUSED", "ENOTFOUND", "EAI_AGAIN", "EHOSTUNREACH", "ENETUNREACH", "UND_ERR_CONNECT_TIMEOUT",
]);

// -- errors ------------------------------------------------------------------------------

/** Base class. `problem` is the server's RFC 9457 problem details (empty for client-side errors). */
export class DescentError extends Error {
  constructor(detail, { problem = {}, status, cause } = {}) {
    const code = status ?? problem.status;
    const prefix = [code, problem.title].filter((part) => part !== undefined && part !== "").join(" ");
    super(prefix ? `${prefix}: ${detail}` : detail, cause === undefined ? undefined : { cause });
    this.name = new.target.name;
    this.problem = problem;
    this.status = code;
    this.detail = detail;
    this.title = problem.title;
    this.type = problem.type;
    this.field = problem.field;
  }
}

/** 401: no credentials, or a token/API key valid for nothing. */
export class Unauthorized extends DescentError {}
/** 403: a valid token, but for another session. */
export class Forbidden extends DescentError {}
/** 404: no such session (unknown, deleted or expired). */
export class NotFound extends DescentError {}
/** 412: If-Match named a step count that is not the session's (`problem.step` is). */
export class PreconditionFailed extends DescentError {}
/** 413: the request body exceeds the server's limit. */
export class PayloadTooLarge extends DescentError {}
/** 415: a Content-Type the endpoint does not accept. */
export class UnsupportedMediaType extends DescentError {}
/** 422: malformed body, wrong length, bad hyperparameter or state, NaN/Inf; `field` names the culprit. */
export class InvalidInput extends DescentError {}
/** 503: the session stayed contended (or the store unreachable) through the retries; nothing changed. */
export class Busy extends DescentError {}
/** Any other 5xx. */
export class ServerError extends DescentError {}
/** The server could not be reached (or the connection broke) through every retry; `cause` is fetch's error. */
export class NetworkError extends DescentError {}
/**
 * A step was applied on the server but its response was lost, and the session does not hold
 * the parameters, so the new ones cannot be fetched again. `step` is the server's count.
 */
export class ResponseLost extends DescentError {
  constructor(detail, step) {
    super(detail);
    this.step = step;
  }
}

const BY_STATUS = {
  401: Unauthorized, 403: Forbidden, 404: NotFound, 412: PreconditionFailed,
  413: PayloadTooLarge, 415: UnsupportedMediaType, 422: InvalidInput, 503: Busy,
};

/** Throw the typed error for an error response; return quietly for 1xx-3xx. */
async function raiseForProblem(response) {
  const status = response.status;
  if (status < 400) return;
  const text = await response.text().catch(() => "");
  let problem = {};
  if ((response.headers.get("content-type") ?? "").includes("json")) {
    try {
      const body = JSON.parse(text);
      if (body && typeof body === "object" && !Array.isArray(body)) problem = body;
    } catch {
      // not JSON after all: the text becomes the detail
    }
  }
  problem = { status, title: response.statusText || undefined, ...problem };
  const detail = String(problem.detail || text.slice(0, 500) || response.statusText || `HTTP ${status}`);
  const Class = BY_STATUS[status] ?? (status >= 500 ? ServerError : DescentError);
  throw new Class(detail, { problem, status });
}

// -- transport ----------------------------------------------------------------------------

/** Whether `error` is a transport failure (fetch's TypeError, a timeout), not a bug or a user abort. */
function isNetworkError(error) {
  return error instanceof TypeError || error?.name === "TimeoutError";
}

/** True when the request certainly never reached the server (only Node tells us; browsers do not). */
function unsent(error) {
  return UNSENT_CODES.has(error?.cause?.code);
}

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

/**
 * The k-th wait is backoffMs * 2**k (capped at maxBackoffMs, jittered by 50-100%), or the
 * server's Retry-After when it sends one.
 */
function pause(retry, attempt, response) {
  const after = response?.headers.get("retry-after");
  if (after && /^\d+$/.test(after)) return sleep(Math.min(Number(after) * 1000, retry.maxBackoffMs));
  const base = Math.min(retry.backoffMs * 2 ** attempt, retry.maxBackoffMs);
  return sleep(base * (0.5 + Math.random() / 2));
}

/** Drain a response we will not use, so its connection goes back to the pool. */
async function discard(response) {
  await response.arrayBuffer().catch(() => undefined);
}

function resolveOptions(options = {}) {
  const encoding = options.encoding ?? "binary";
  if (encoding !== "binary" && encoding !== "json") {
    throw new TypeError(`encoding must be "binary" or "json", not ${JSON.stringify(encoding)}`);
  }
  const retry = { attempts: 5, backoffMs: 100, maxBackoffMs: 10_000, ...options.retry };
  if (!(Number.isInteger(retry.attempts) && retry.attempts >= 1)) {
    throw new RangeError(`retry.attempts must be an integer of at least 1, not ${retry.attempts}`);
  }
  return {
    encoding,
    timeoutMs: options.timeoutMs ?? 60_000,
    retry,
    conditionalSteps: options.conditionalSteps ?? true,
    fetch: options.fetch ?? globalThis.fetch.bind(globalThis),
  };
}

class Transport {
  constructor(url, options) {
    this.url = String(url).replace(/\/+$/, "");
    Object.assign(this, options);
  }

  /** One attempt; fetch's own errors propagate. */
  send(method, path, headers = {}, body = undefined) {
    const signal = AbortSignal.timeout(this.timeoutMs);
    return this.fetch(this.url + path, { method, headers, body, signal });
  }

  /** Send, retrying as the module docstring says; throw typed errors for 4xx/5xx. */
  async request(method, path, { headers, body, idempotent }) {
    for (let attempt = 0; ; attempt++) {
      const last = attempt === this.retry.attempts - 1;
      let response;
      try {
        response = await this.send(method, path, headers, body);
      } catch (error) {
        if (!isNetworkError(error)) throw error;
        if (last || !(idempotent || unsent(error))) throw networkError(method, path, error);
        await pause(this.retry, attempt);
        continue;
      }
      if (!last && (response.status === 503 || (idempotent && response.status >= 500))) {
        await discard(response);
        await pause(this.retry, attempt, response);
        continue;
      }
      await raiseForProblem(response);
      return response;
    }
  }
}

function networkError(method, path, error) {
  const reason = error?.cause?.code ?? error?.cause?.message ?? error.message;
  return new NetworkError(`${method} ${path} failed: ${reason}`, { cause: error });
}

// -- vectors ------------------------------------------------------------------------------

/** Raw little-endian bytes of a typed array (a view when the platform is little-endian). */
function toLittleEndian(array) {
  if (LITTLE_ENDIAN) return new Uint8Array(array.buffer, array.byteOffset, array.byteLength);
  const view = new DataView(new ArrayBuffer(array.byteLength));
  const size = array.BYTES_PER_ELEMENT;
  const set = size === 4 ? view.setFloat32 : view.setFloat64;
  array.forEach((value, i) => set.call(view, i * size, value, true));
  return new Uint8Array(view.buffer);
}

/** A typed array of class `Vector` read from raw little-endian bytes. */
function fromLittleEndian(buffer, Vector) {
  if (LITTLE_ENDIAN) return new Vector(buffer);
  const view = new DataView(buffer);
  const size = Vector.BYTES_PER_ELEMENT;
  const out = new Vector(buffer.byteLength / size);
  for (let i = 0; i < out.length; i++) out[i] = size === 4 ? view.getFloat32(i * size, true) : view.getFloat64(i * size, true);
  return out;
}

/** JSON with typed arrays as plain arrays (JSON.stringify would write them as objects). */
function jsonBody(data) {
  return JSON.stringify(data, (_key, value) => (ArrayBuffer.isView(value) ? Array.from(value) : value));
}

function stepOf(response) {
  const tag = (response.headers.get("etag") ?? "").replace(/^W\//, "").replace(/"/g, "");
  return /^\d+$/.test(tag) ? Number(tag) : null;
}

// -- sessions -----------------------------------------------------------------------------

/** List every optimizer with its hyperparameters, defaults and state names. */
export async function listOptimizers(url, options = {}) {
  const transport = new Transport(url, resolveOptions(options));
  const response = await transport.request("GET", "/v1/optimizers", { headers: {}, idempotent: true });
  return response.json();
}

/** One optimizer session on a Descent server. Build with `Session.create` or `Session.attach`. */
export class Session {
  #transport;
  #conditionalSteps;

  /** @private */
  constructor(url, options) {
    const resolved = resolveOptions(options);
    this.#transport = new Transport(url, resolved);
    this.#conditionalSteps = resolved.conditionalSteps;
    this.id = "";
    this.token = "";
    /** The session's description as the server last reported it (no token). */
    this.info = {};
    /** The step count this client last saw; the default If-Match of `step`. */
    this.stepCount = 0;
    /** Whether the last step was skipped (a session created with nonfinite: "skip"). */
    this.skipped = false;
  }

  /**
   * Create a session. `optimizer` is `{name, ...hyperparameters}` (or just a name); give
   * `params` for a server-held session, or `dim` to send the parameters with every step.
   */
  static async create(url, { optimizer, dim, params, dtype = "float32", nonfinite, ttlS, federation,
    apiKey, ...options } = {}) {
    const session = new Session(url, options);
    const body = { optimizer: typeof optimizer === "string" ? { name: optimizer } : optimizer, dtype };
    if (dim !== undefined) body.dim = dim;
    if (params !== undefined) body.params = params;
    if (nonfinite !== undefined) body.nonfinite = nonfinite;
    if (ttlS !== undefined) body.ttl_s = ttlS;
    if (federation !== undefined) body.federation = federation;
    const headers = { "Content-Type": JSON_TYPE };
    if (apiKey) headers.Authorization = `Bearer ${apiKey}`;
    const response = await session.#transport.request("POST", "/v1/sessions",
      { headers, body: jsonBody(body), idempotent: false });
    const created = await response.json();
    session.id = created.id;
    session.token = created.token;
    session.#remember(created);
    return session;
  }

  /**
   * Attach to an existing session by id and token. Its description is fetched (dim, dtype,
   * step count); `dtype` and `dim`, when given, are checked against it.
   */
  static async attach(url, id, token, { dtype, dim, ...options } = {}) {
    const session = new Session(url, options);
    session.id = id;
    session.token = token;
    const info = await session.describe();
    for (const [name, expected] of [["dtype", dtype], ["dim", dim]]) {
      if (expected !== undefined && info[name] !== expected) {
        throw new DescentError(`session ${id} has ${name} ${info[name]}, not ${expected}`);
      }
    }
    return session;
  }

  /** @type {number} */
  get dim() { return this.info.dim; }
  /** @type {"float32" | "float64"} */
  get dtype() { return this.info.dtype; }
  /** @type {boolean} */
  get serverHeld() { return Boolean(this.info.server_held); }
  get url() { return this.#transport.url; }
  get encoding() { return this.#transport.encoding; }

  /**
   * One optimizer step. `params` is required unless the server holds them. `ifMatch`: the
   * step count the server must be at (default: `stepCount` when conditional steps are on);
   * `false` sends the step unconditionally (then a lost response cannot be recovered).
   */
  async step(grads, { params, ifMatch } = {}) {
    const hasParams = params !== undefined && params !== null;
    if (!hasParams && !this.serverHeld) {
      throw new TypeError("this session does not hold the parameters: pass params with the grads");
    }
    const expected = ifMatch === undefined ? (this.#conditionalSteps ? this.stepCount : null)
      : ifMatch === false || ifMatch === null ? null : ifMatch;
    const headers = this.#auth(this.#accept());
    if (expected !== null) headers["If-Match"] = `"${expected}"`;
    let body;
    if (this.encoding === "binary") {
      const vectors = hasParams ? [[params, "params"], [grads, "grads"]] : [[grads, "grads"]];
      headers["Content-Type"] = OCTET;
      body = toLittleEndian(this.#concat(vectors));
    } else {
      headers["Content-Type"] = JSON_TYPE;
      const data = { grads: this.#vector(grads, "grads") };
      if (hasParams) data.params = this.#vector(params, "params");
      body = jsonBody(data);
    }

    const transport = this.#transport;
    const path = this.#path("/step");
    for (let attempt = 0; ; attempt++) {
      const last = attempt === transport.retry.attempts - 1;
      let response;
      try {
        response = await transport.send("POST", path, headers, body);
      } catch (error) {
        if (!isNetworkError(error)) throw error;
        if (last) throw networkError("POST", path, error);
        if (unsent(error)) {
          await pause(transport.retry, attempt);
          continue;
        }
        if (expected === null) throw networkError("POST", path, error); // no way to tell whether it landed
      }
      if (response) {
        if (response.status === 503 && !last) { // Busy: the server applied nothing
          await discard(response);
          await pause(transport.retry, attempt, response);
          continue;
        }
        if (response.status < 500 || last || expected === null) return this.#stepped(response);
        await discard(response);
      }
      // Ambiguous (lost after sending, or 5xx): ask the server whether the step landed.
      const now = (await this.describe()).step;
      if (now > expected) {
        this.skipped = false;
        if (this.serverHeld) return this.params();
        throw new ResponseLost(
          `step ${expected + 1} was applied on the server (now at step ${now}) but its response was lost; `
          + "this session does not hold the parameters, so they cannot be fetched again", now);
      }
      await pause(transport.retry, attempt);
    }
  }

  /** The parameters the server holds, and its step count. */
  async params() {
    const response = await this.#transport.request("GET", this.#path("/params"),
      { headers: this.#auth(this.#accept()), idempotent: true });
    const step = stepOf(response) ?? this.stepCount;
    this.stepCount = step;
    return { params: await this.#vectorFrom(response), step };
  }

  /** The session's description (resolved hyperparameters, step, dim, dtype; no token). */
  async describe() {
    const response = await this.#transport.request("GET", this.#path(), { headers: this.#auth(), idempotent: true });
    return this.#remember(await response.json());
  }

  /** Export the optimizer state: `{step, optimizer, state, params?}`, vectors as typed arrays. */
  async state() {
    const response = await this.#transport.request("GET", this.#path("/state"), { headers: this.#auth(), idempotent: true });
    return this.#stateDocument(response);
  }

  /** Replace the optimizer state (the shape `state()` returns; e.g. from a torch state_dict). */
  async loadState(document) {
    const response = await this.#transport.request("PUT", this.#path("/state"),
      { headers: this.#auth({ "Content-Type": JSON_TYPE }), body: jsonBody(document), idempotent: true });
    return this.#stateDocument(response);
  }

  /** Change hyperparameters mid-run, e.g. `{lr: 0.001}`; returns the new description. */
  async patch(hyperparameters) {
    const response = await this.#transport.request("PATCH", this.#path(), {
      headers: this.#auth({ "Content-Type": JSON_TYPE }), body: jsonBody({ optimizer: hyperparameters }), idempotent: true,
    });
    return this.#remember(await response.json());
  }

  /** Delete the session and all its state. */
  async delete() {
    const transport = this.#transport;
    const headers = this.#auth();
    let maybeDeleted = false; // an earlier attempt may have landed: then 404 means done
    for (let attempt = 0; ; attempt++) {
      const last = attempt === transport.retry.attempts - 1;
      let response;
      try {
        response = await transport.send("DELETE", this.#path(), headers);
      } catch (error) {
        if (!isNetworkError(error)) throw error;
        if (last) throw networkError("DELETE", this.#path(), error);
        maybeDeleted ||= !unsent(error);
        await pause(transport.retry, attempt);
        continue;
      }
      if (response.status >= 500 && !last) {
        maybeDeleted = true;
        await discard(response);
        await pause(transport.retry, attempt, response);
        continue;
      }
      if (response.status === 404 && maybeDeleted) {
        await discard(response);
        return;
      }
      await raiseForProblem(response);
      await discard(response);
      return;
    }
  }

  toString() {
    return `Session(${this.id} ${this.info.optimizer?.name ?? "?"} dim=${this.dim} step=${this.stepCount})`;
  }

  // -- building blocks -----------------------------------------------------------------

  #path(suffix = "") {
    return `/v1/sessions/${encodeURIComponent(this.id)}${suffix}`;
  }

  #auth(extra = {}) {
    return { Authorization: `Bearer ${this.token}`, ...extra };
  }

  #accept() {
    return { Accept: this.encoding === "binary" ? OCTET : JSON_TYPE };
  }

  #checkLength(values, name) {
    if (values?.length !== this.dim) {
      throw new RangeError(`${name} has ${values?.length} values, the session's dim is ${this.dim}`);
    }
  }

  /** A vector of the session's dtype, length checked. */
  #vector(values, name) {
    this.#checkLength(values, name);
    const Vector = ARRAYS[this.dtype];
    return values instanceof Vector ? values : Vector.from(values);
  }

  /** Vectors one after another in one typed array of the session's dtype (a binary body). */
  #concat(vectors) {
    const out = new ARRAYS[this.dtype](vectors.length * this.dim);
    vectors.forEach(([values, name], i) => {
      this.#checkLength(values, name);
      out.set(values, i * this.dim);
    });
    return out;
  }

  /**
   * New parameters from a step/params response, binary or JSON (the server answers in bytes
   * when a vector is too long for JSON, whatever was asked).
   */
  async #vectorFrom(response) {
    const Vector = ARRAYS[this.dtype];
    if ((response.headers.get("content-type") ?? "").startsWith(OCTET)) {
      const buffer = await response.arrayBuffer();
      if (buffer.byteLength !== this.dim * Vector.BYTES_PER_ELEMENT) {
        throw new DescentError(`expected ${this.dim} ${this.dtype} values, got ${buffer.byteLength} bytes`);
      }
      return fromLittleEndian(buffer, Vector);
    }
    const body = await response.json();
    return Vector.from(body.params);
  }

  async #stepped(response) {
    await raiseForProblem(response);
    this.skipped = response.headers.get("descent-skipped") !== null;
    const params = await this.#vectorFrom(response);
    this.stepCount = stepOf(response) ?? this.stepCount + 1;
    return { params, step: this.stepCount, skipped: this.skipped };
  }

  async #stateDocument(response) {
    const doc = await response.json();
    const Vector = ARRAYS[this.dtype];
    doc.state = Object.fromEntries(Object.entries(doc.state)
      .map(([name, value]) => [name, typeof value === "number" ? value : Vector.from(value)]));
    if (Array.isArray(doc.params)) doc.params = Vector.from(doc.params);
    this.stepCount = doc.step;
    return doc;
  }

  #remember(info) {
    const { token: _token, ...rest } = info;
    this.info = rest;
    this.stepCount = info.step;
    return rest;
  }
}
