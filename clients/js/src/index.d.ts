// Type declarations for descent-client (src/index.js).

export type Dtype = "float32" | "float64";
export type Encoding = "binary" | "json";
/** A vector: any array-like of numbers; converted to the session's dtype. */
export type VectorLike = ArrayLike<number>;
/** Float32Array for float32 sessions, Float64Array for float64 ones. */
export type Vector = Float32Array | Float64Array;

/** An optimizer and its hyperparameters, named as in torch.optim, e.g. `{name: "adam", lr: 0.01}`. */
export interface OptimizerSpec {
  name: string;
  [hyperparameter: string]: unknown;
}

export interface RetryOptions {
  /** Tries in all (default 5). */
  attempts?: number;
  /** First wait, doubled each retry, jittered by 50-100% (default 100). */
  backoffMs?: number;
  /** Longest wait, also the cap on a server's Retry-After (default 10000). */
  maxBackoffMs?: number;
}

export interface ClientOptions {
  /** How vectors travel: raw little-endian bytes (default) or JSON arrays. Results are identical. */
  encoding?: Encoding;
  /** Per-request timeout (default 60000). */
  timeoutMs?: number;
  retry?: RetryOptions;
  /** Send steps with `If-Match: "<stepCount>"` so a lost response can be recovered (default true). */
  conditionalSteps?: boolean;
  /** A fetch implementation (default globalThis.fetch). */
  fetch?: typeof globalThis.fetch;
}

export interface CreateOptions extends ClientOptions {
  /** `{name, ...hyperparameters}`, or just a name for torch's defaults. */
  optimizer: OptimizerSpec | string;
  /** Vector length; required unless `params` is given. */
  dim?: number;
  /** Initial parameters: the server holds them from then on. */
  params?: VectorLike;
  dtype?: Dtype;
  /** NaN/Inf in grads: "reject" (422, default) or "skip" the step. */
  nonfinite?: "reject" | "skip";
  /** Idle seconds before the session expires. */
  ttlS?: number;
  /** Makes the session federated (see the API docs). */
  federation?: Record<string, unknown>;
  /** Needed when the server runs with DESCENT_API_KEYS. */
  apiKey?: string;
}

export interface AttachOptions extends ClientOptions {
  /** When given, checked against the session's dtype. */
  dtype?: Dtype;
  /** When given, checked against the session's dim. */
  dim?: number;
}

export interface StepOptions {
  /** Required unless the server holds the parameters. */
  params?: VectorLike;
  /** The step count the server must be at (412 otherwise); `false`: unconditional. Default: `stepCount`. */
  ifMatch?: number | false | null;
}

export interface StepResult {
  params: Vector;
  /** The session's step count after this step. */
  step: number;
  /** True when the step was skipped (nonfinite: "skip" and NaN/Inf grads). */
  skipped: boolean;
}

export interface ParamsResult {
  params: Vector;
  step: number;
}

export interface SessionInfo {
  id: string;
  /** The optimizer name and every resolved hyperparameter. */
  optimizer: OptimizerSpec;
  dim: number;
  dtype: Dtype;
  step: number;
  server_held: boolean;
  nonfinite: "reject" | "skip";
  ttl_s: number;
  created_at: number;
  federation?: Record<string, unknown>;
  version?: number;
}

export interface StateDocument {
  step: number;
  optimizer: OptimizerSpec | Record<string, unknown>;
  /** torch's state names -> vectors (typed arrays when read) or scalars. */
  state: Record<string, Vector | number[] | number>;
  /** Present for server-held sessions. */
  params?: Vector | number[];
}

export interface HyperparameterInfo {
  name: string;
  type: string;
  default: unknown;
  nullable: boolean;
  constraint: string;
  description: string;
}

export interface OptimizerInfo {
  name: string;
  summary: string;
  reference: string;
  hyperparameters: HyperparameterInfo[];
  state: string[];
  state_scalars: string[];
}

/** RFC 9457 problem details, as the server sends them. */
export interface Problem {
  type?: string;
  title?: string;
  status?: number;
  detail?: string;
  instance?: string;
  field?: string;
  [member: string]: unknown;
}

/** Base class of every error this client throws for a failed call. */
export class DescentError extends Error {
  constructor(detail: string, options?: { problem?: Problem; status?: number; cause?: unknown });
  /** The server's problem details (empty for client-side errors). */
  readonly problem: Problem;
  /** HTTP status; undefined when no response arrived. */
  readonly status: number | undefined;
  readonly detail: string;
  readonly title: string | undefined;
  readonly type: string | undefined;
  /** The request member at fault, e.g. "optimizer.lr" or "grads". */
  readonly field: string | undefined;
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
/** 422: malformed body, wrong length, bad hyperparameter or state, NaN/Inf. */
export class InvalidInput extends DescentError {}
/** 503: the session stayed contended through the retries; nothing changed. */
export class Busy extends DescentError {}
/** Any other 5xx. */
export class ServerError extends DescentError {}
/** No response through every retry; `cause` is fetch's error. */
export class NetworkError extends DescentError {}
/** A step landed but its response was lost, and the session does not hold the parameters. */
export class ResponseLost extends DescentError {
  constructor(detail: string, step: number);
  /** The server's step count. */
  readonly step: number;
}

/** Every optimizer with its hyperparameters, defaults and state names. */
export function listOptimizers(url: string, options?: ClientOptions): Promise<OptimizerInfo[]>;

/** One optimizer session on a Descent server. */
export class Session {
  private constructor(url: string, options?: ClientOptions);
  static create(url: string, options: CreateOptions): Promise<Session>;
  /** Attach by id and token; fetches the description (dim, dtype, step count). */
  static attach(url: string, id: string, token: string, options?: AttachOptions): Promise<Session>;

  readonly id: string;
  /** The session's bearer token (shown by the server only at creation). */
  readonly token: string;
  /** The description as the server last reported it. */
  readonly info: SessionInfo;
  /** The step count this client last saw: the default If-Match of `step`. */
  stepCount: number;
  /** Whether the last step was skipped. */
  readonly skipped: boolean;
  readonly dim: number;
  readonly dtype: Dtype;
  readonly serverHeld: boolean;
  readonly url: string;
  readonly encoding: Encoding;

  /** One optimizer step: send the gradient (and params unless the server holds them). */
  step(grads: VectorLike, options?: StepOptions): Promise<StepResult>;
  /** The parameters the server holds, and its step count. */
  params(): Promise<ParamsResult>;
  describe(): Promise<SessionInfo>;
  /** Export the whole optimizer state, vectors as typed arrays of the session's dtype. */
  state(): Promise<StateDocument>;
  /** Replace the optimizer state; returns it as the server now holds it. */
  loadState(document: StateDocument): Promise<StateDocument>;
  /** Change hyperparameters mid-run, e.g. `{lr: 0.001}`. */
  patch(hyperparameters: Record<string, unknown>): Promise<SessionInfo>;
  /** Delete the session and all its state. */
  delete(): Promise<void>;
}
