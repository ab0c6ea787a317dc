/**
 * A process group: one rank of a data-parallel job, joined through a TCPStore rendezvous (rank 0 hosts the
 * store at `masterAddr:masterPort`) and talking over PyTorch's c10d (Gloo on CPU, NCCL in a CUDA build).
 *
 * Every collective blocks until all ranks have called it (in the same order) or fails: a rank that died
 * closes its connections, so the others fail at their next collective with a `DistError` that names it
 * (ranks on the same machine are checked by pid); a rank that hangs is caught by the timeout.
 * @module
 */
import { readFileSync } from "node:fs";
import { hostname } from "node:os";
import { CohortError, NativeError } from "../errors.js";
import { type Device, type Tensor, tensor, tidy } from "../tensor/index.js";
import { native } from "../tensor/native.js";

/** A collective failed: a rank died, hung past the timeout, or the network failed. */
export class DistError extends CohortError {
  override name = "DistError";
}

export type Backend = "gloo" | "nccl";

export interface GroupOptions {
  worldSize: number;
  rank: number;
  /** Host of rank 0 (which hosts the TCPStore). */
  masterAddr: string;
  masterPort: number;
  /** Collective timeout (a rank that does not join a collective within it is reported). Default 30 minutes (as PyTorch's). */
  timeoutMs?: number;
  /** How long the rendezvous waits for every rank to arrive. Default: `timeoutMs`. */
  rendezvousTimeoutMs?: number;
  /** Default gloo (CPU tensors); nccl needs a CUDA build. */
  backend?: Backend;
  /**
   * Largest flattened buffer per all-reduce bucket. Default 4 MiB: buckets are in flight together, so smaller
   * ones overlap (a 13.7 MB gradient all-reduce over loopback Gloo took a median 67 ms as one 25 MiB bucket,
   * 27–39 ms in 1–4 MiB buckets, on the 2-core development box).
   */
  bucketBytes?: number;
}

interface Peer {
  rank: number;
  pid: number;
  host: string;
}

/** Whether a process on this machine is running (an exited child not yet reaped counts as gone). */
function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
  } catch (e) {
    return (e as NodeJS.ErrnoException).code !== "ESRCH";
  }
  try {
    // field 3 of /proc/<pid>/stat is the state; Z = zombie
    const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
    return stat.slice(stat.lastIndexOf(")") + 2, stat.lastIndexOf(")") + 3) !== "Z";
  } catch {
    return true;
  }
}

export const DEFAULT_TIMEOUT_MS = 30 * 60 * 1000;

/** Backends this build of the addon was compiled with. */
export function availableBackends(): Backend[] {
  return native.distBackends() as Backend[];
}

export class ProcessGroup {
  readonly rank: number;
  readonly worldSize: number;
  readonly backend: Backend;
  readonly timeoutMs: number;
  readonly bucketBytes: number;
  readonly masterAddr: string;
  readonly masterPort: number;
  #h: unknown;
  #peers: Peer[] = [];
  #failed: DistError | null = null;

  private constructor(h: unknown, o: Required<GroupOptions>) {
    this.#h = h;
    this.rank = o.rank;
    this.worldSize = o.worldSize;
    this.backend = o.backend;
    this.timeoutMs = o.timeoutMs;
    this.bucketBytes = o.bucketBytes;
    this.masterAddr = o.masterAddr;
    this.masterPort = o.masterPort;
  }

  /** Joins the group: blocks until all `worldSize` ranks have arrived, or throws after the timeout. */
  static init(opts: GroupOptions): ProcessGroup {
    const timeoutMs = opts.timeoutMs ?? DEFAULT_TIMEOUT_MS;
    const o: Required<GroupOptions> = {
      backend: "gloo",
      bucketBytes: 4 * 1024 * 1024,
      rendezvousTimeoutMs: timeoutMs,
      ...opts,
      timeoutMs,
    };
    if (!availableBackends().includes(o.backend)) {
      throw new DistError(
        `backend "${o.backend}" is not in this build of the addon (it has: ${availableBackends().join(", ") || "none"}). ` +
          (o.backend === "gloo"
            ? "Install Debian's libgloo-dev (bash setup.sh does) and rebuild with `npm run build:native`."
            : "Build the addon against a CUDA libtorch with NCCL (see docs/GPU.md), or use backend gloo."),
      );
    }
    let h: unknown;
    try {
      h = native.distInit(o.masterAddr, o.masterPort, o.worldSize, o.rank, o.rendezvousTimeoutMs, o.backend);
    } catch (e) {
      const msg = (e as Error).message.replace(/^distInit: /, "").replace(/\.+$/, "");
      const hint = /address already in use/i.test(msg)
        ? `Port ${o.masterPort} is taken on ${o.masterAddr}; choose another --master-port (MASTER_PORT)`
        : /time(d)? ?out/i.test(msg)
          ? `Not all ${o.worldSize} ranks arrived within ${o.rendezvousTimeoutMs / 1000} s; start every rank with the same ` +
            "--world-size, --master-addr and --master-port, each with its own --rank"
          : `Check that rank 0 runs and that ${o.masterAddr}:${o.masterPort} is reachable from every rank`;
      throw new DistError(
        `rank ${o.rank}: rendezvous at ${o.masterAddr}:${o.masterPort} (world size ${o.worldSize}) failed: ${msg}. ${hint}`,
      );
    }
    const g = new ProcessGroup(h, o);
    native.distStoreSet(h, `cohort/peer/${o.rank}`, JSON.stringify({ pid: process.pid, host: hostname() }));
    for (let r = 0; r < o.worldSize; r++) {
      const p = JSON.parse(native.distStoreGet(h, `cohort/peer/${r}`)) as { pid: number; host: string };
      g.#peers.push({ rank: r, pid: p.pid, host: p.host });
    }
    // every rank has read every peer before rank 0 (the store's host) may move on
    g.barrier();
    return g;
  }

  /** The ranks (with pid and host) of the group. */
  get peers(): readonly Peer[] {
    return this.#peers;
  }

  /** Sums tensors in place over all ranks (flattened into buckets of at most `bucketBytes`). */
  allreduce(tensors: Tensor[]): void {
    if (tensors.length === 0) return;
    this.#call("allreduce", () =>
      native.distAllreduce(
        this.#handle(),
        tensors.map((t) => t.h),
        this.bucketBytes,
        this.timeoutMs,
      ),
    );
  }

  /**
   * A reducer that sums the gradients of `params` over ranks with the all-reduce overlapped with the backward
   * pass (see `GradientReducer`). Every rank must create it from the same list (same order and shapes).
   */
  gradientReducer(params: Tensor[]): GradientReducer {
    const h = this.#call("allreduce", () =>
      native.distReducer(
        this.#handle(),
        params.map((p) => p.h),
        this.bucketBytes,
        this.timeoutMs,
      ),
    );
    return new GradientReducer(h, params, (op, fn) => this.#call(op, fn));
  }

  /** Copies rank `root`'s values into `tensors` on every other rank (in place, bucketed). */
  broadcast(tensors: Tensor[], root = 0): void {
    if (tensors.length === 0) return;
    this.#call("broadcast", () =>
      native.distBroadcast(
        this.#handle(),
        tensors.map((t) => t.h),
        root,
        this.bucketBytes,
        this.timeoutMs,
      ),
    );
  }

  barrier(): void {
    this.#call("barrier", () => native.distBarrier(this.#handle(), this.timeoutMs));
  }

  /** Element-wise sums of a list of numbers over ranks (f64, exact for counts). */
  sum(values: readonly number[]): number[] {
    if (values.length === 0) return [];
    return tidy(() => {
      const t = tensor(Float64Array.from(values), { device: this.#device() });
      this.allreduce([t]);
      return Array.from(t.data() as Float64Array);
    });
  }

  /** True on every rank when `flag` is true on any rank. */
  any(flag: boolean): boolean {
    return (this.sum([flag ? 1 : 0])[0] as number) > 0;
  }

  /** Every rank's list of numbers (lists may differ in length), indexed by rank. */
  allgather(values: readonly number[]): number[][] {
    return tidy(() => {
      const lens = this.#gather(Float64Array.of(values.length)).map((l) => l[0] as number);
      const maxLen = Math.max(1, ...lens);
      const padded = new Float64Array(maxLen);
      padded.set(values);
      return this.#gather(padded).map((xs, r) => xs.slice(0, lens[r]));
    });
  }

  /** Every rank's JSON-able value, indexed by rank (for metrics and checkpoint state: small values). */
  allgatherJson<T>(value: T): T[] {
    const bytes = new TextEncoder().encode(JSON.stringify(value));
    return tidy(() => {
      const lens = this.#gather(Float64Array.of(bytes.length)).map((l) => l[0] as number);
      const maxLen = Math.max(1, ...lens);
      const padded = new Uint8Array(maxLen);
      padded.set(bytes);
      const t = tensor(padded, { device: this.#device() });
      const parts = this.#call("allgather", () =>
        native.distAllgather(this.#handle(), t.h, this.timeoutMs),
      ) as unknown[];
      const dec = new TextDecoder();
      return parts.map((h, r) => {
        const b = new Uint8Array(native.toBuffer(h) as ArrayBuffer).subarray(0, lens[r]);
        native.dispose(h);
        return JSON.parse(dec.decode(b)) as T;
      });
    });
  }

  /** Leaves the group. Idempotent; after a failure the connections are left to the process exit. */
  destroy(): void {
    if (this.#h === null) return;
    if (this.#failed === null) native.distDestroy(this.#h);
    this.#h = null;
  }

  #gather(values: Float64Array): number[][] {
    const t = tensor(values, { device: this.#device() });
    const parts = this.#call("allgather", () => native.distAllgather(this.#handle(), t.h, this.timeoutMs)) as unknown[];
    t.dispose();
    return parts.map((h) => {
      const out = Array.from(new Float64Array(native.toBuffer(h) as ArrayBuffer));
      native.dispose(h);
      return out;
    });
  }

  /** Where this rank's small buffers live: its GPU (cuda:LOCAL_RANK) under NCCL, else the CPU. */
  #device(): Device {
    return this.backend === "nccl" ? `cuda:${Number(process.env.LOCAL_RANK ?? this.rank)}` : "cpu";
  }

  #handle(): unknown {
    if (this.#failed) throw this.#failed;
    if (this.#h === null) throw new DistError(`rank ${this.rank}: the process group was destroyed`);
    return this.#h;
  }

  #call<T>(op: string, fn: () => T): T {
    this.#handle(); // throws once the group has failed or was destroyed
    try {
      return fn();
    } catch (e) {
      if (!(e instanceof NativeError)) throw e;
      const detail = e.message.replace(/^dist\w+: /, "").replace(/\s*\(inputs: .*\)$/s, "");
      // a closed connection comes while the dead peer is still exiting: give its pid a moment to go
      const settleMs = /time(d)? ?out/i.test(detail) ? 0 : 2000;
      this.#failed = new DistError(`rank ${this.rank}: ${op} failed: ${detail}. ${this.lostPeers(settleMs)}`);
      throw this.#failed;
    }
  }

  /**
   * Which ranks are gone, as far as this process can tell: ranks on this machine are checked by pid; ranks
   * elsewhere are listed for the user to check.
   */
  lostPeers(settleMs = 0): string {
    const here = hostname();
    const dead: string[] = [];
    const remote: string[] = [];
    const local = this.#peers.filter((p) => p.rank !== this.rank && p.host === here);
    for (const p of this.#peers)
      if (p.rank !== this.rank && p.host !== here) remote.push(`rank ${p.rank} (pid ${p.pid} on ${p.host})`);
    // a killed process closes its sockets before it is gone from the process table: poll up to settleMs
    const until = Date.now() + settleMs;
    const tick = new Int32Array(new SharedArrayBuffer(4));
    for (;;) {
      for (const p of local) if (!alive(p.pid)) dead.push(`rank ${p.rank} (pid ${p.pid})`);
      if (dead.length > 0 || Date.now() >= until) break;
      Atomics.wait(tick, 0, 0, 20);
    }
    if (dead.length > 0)
      return `${dead.join(", ")} ${dead.length === 1 ? "has" : "have"} exited; see ${dead.length === 1 ? "its" : "their"} log for why. Stopping this rank too`;
    if (remote.length > 0)
      return `No rank on this machine has exited; check ${remote.join(", ")} (a rank died, hung past the ${this.timeoutMs / 1000} s timeout, or the network failed)`;
    return `No rank has exited; one hung past the ${this.timeoutMs / 1000} s timeout`;
  }
}

/** What a `GradientReducer` did in the current or last step (counts start again at `prepare`). */
export interface ReducerStats {
  /** Buckets the parameters are split into (reverse parameter order, ≤ bucketBytes each). */
  buckets: number;
  /** Buckets whose all-reduce was launched by the armed backward pass, before it returned. */
  launchedInBackward: number;
  /** Buckets launched by `finish`: not ready during the backward pass, or not armed. */
  launchedAfterBackward: number;
  /** `finish` calls so far. */
  steps: number;
}

/**
 * Sums the gradients of a fixed list of parameters over ranks, overlapping the all-reduce with the backward
 * pass as PyTorch's DistributedDataParallel does: a hook on each parameter's gradient accumulator marks its
 * gradient ready; buckets of ≤ bucketBytes over the parameters in reverse order (the order gradients become
 * ready) are copied into a persistent buffer and their all-reduce launched as soon as all their gradients
 * are in, in bucket order on every rank, while the backward pass goes on. With gradient accumulation, only
 * the backward pass after `prepare()` launches anything (earlier micro-batches just accumulate, like DDP's
 * `no_sync`). The sums are those of `ProcessGroup.allreduce` on the same gradients.
 */
export class GradientReducer {
  #h: unknown;
  constructor(
    h: unknown,
    readonly params: readonly Tensor[],
    private readonly call: <T>(op: string, fn: () => T) => T,
  ) {
    this.#h = h;
  }

  /** Arms the reducer: call right before the backward pass of an optimizer step's last micro-batch. */
  prepare(): void {
    native.distReducerPrepare(this.#handle());
  }

  /**
   * Completes the step's sum: launches the buckets the backward pass did not (all of them without `prepare`),
   * waits, and writes the sums into the gradients. A parameter without a gradient on this rank takes part with
   * zeros; one without a gradient on every rank is left without one. Returns whether the loss was finite on
   * every rank.
   */
  finish(finiteLoss: boolean): boolean {
    return this.call("allreduce", () => native.distReducerFinish(this.#handle(), finiteLoss) as boolean);
  }

  stats(): ReducerStats {
    return native.distReducerStats(this.#handle()) as ReducerStats;
  }

  /** Removes the hooks (idempotent). */
  destroy(): void {
    if (this.#h === null) return;
    native.distReducerDestroy(this.#h);
    this.#h = null;
  }

  #handle(): unknown {
    if (this.#h === null) throw new DistError("the gradient reducer was destroyed");
    return this.#h;
  }
}
