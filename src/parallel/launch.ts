/**
 * `--nproc N`: N ranks of one job on this machine, as child processes of a launcher (the `cohort` process the
 * user started). The launcher picks a free loopback port for the rendezvous, gives each child
 * `WORLD_SIZE/RANK/LOCAL_RANK/LOCAL_WORLD_SIZE/MASTER_ADDR/MASTER_PORT`, and talks to it over an IPC channel:
 *
 * - Ctrl-C or SIGTERM is handled by the launcher only (the children ignore both); the first one asks every rank to
 *   stop after the current step (all ranks agree on the step and save one checkpoint; the launcher exits 130 or
 *   143), the second aborts them.
 * - When a rank dies, the launcher names it, gives the others `graceMs` to notice at their next collective and
 *   exit with their own message, then terminates what is left. Exit code: the first failure's.
 * - A rank whose launcher disappears (the IPC channel closes) exits.
 * @module
 */
import { type ChildProcess, spawn } from "node:child_process";
import { createServer } from "node:net";
import { availableParallelism } from "node:os";

export interface LaunchOptions {
  nproc: number;
  /** Arguments after the script (the command line without `--nproc`). */
  args: string[];
  /** The script the children run. Default: this process's (process.argv[1]). */
  script?: string;
  /** Node flags of the children. Default: this process's (e.g. `--import tsx`). */
  execArgv?: string[];
  /** Rendezvous port. Default: a free loopback port. */
  masterPort?: number;
  /** After a rank fails, how long the others get to exit by themselves. Default 30 s. */
  graceMs?: number;
  /** Launcher messages. Default: stderr. */
  log?: (line: string) => void;
  /** Extra environment of the children. */
  env?: Record<string, string>;
  /** Called with each child once spawned (tests). */
  onSpawn?: (rank: number, child: ChildProcess) => void;
}

export type LaunchMessage = { type: "stop" } | { type: "abort" };

/** A free TCP port on 127.0.0.1 (free when checked; the rendezvous binds it moments later). */
export async function freePort(): Promise<number> {
  return await new Promise((resolve, reject) => {
    const srv = createServer();
    srv.unref();
    srv.on("error", reject);
    srv.listen(0, "127.0.0.1", () => {
      const addr = srv.address();
      const port = typeof addr === "object" && addr !== null ? addr.port : 0;
      srv.close(() => resolve(port));
    });
  });
}

function describeExit(code: number | null, signal: NodeJS.Signals | null): string {
  return signal !== null ? `was killed by ${signal}` : `exited with code ${code}`;
}

/** Runs N local ranks and returns the launcher's exit code (0 when every rank finished). */
export async function launchLocal(opts: LaunchOptions): Promise<number> {
  const log = opts.log ?? ((l: string) => process.stderr.write(`${l}\n`));
  const n = opts.nproc;
  const port = opts.masterPort ?? (await freePort());
  const script = opts.script ?? (process.argv[1] as string);
  const execArgv = opts.execArgv ?? process.execArgv;
  const graceMs = opts.graceMs ?? 30_000;
  const children: ChildProcess[] = [];
  const running = new Set<number>();
  let firstFailure: { rank: number; code: number } | null = null;
  let timers: NodeJS.Timeout[] = [];
  let interrupts = 0;

  const done = new Promise<number>((resolve) => {
    const onExit = (rank: number, child: ChildProcess) => (code: number | null, signal: NodeJS.Signals | null) => {
      running.delete(rank);
      const ok = code === 0 && signal === null;
      if (!ok && firstFailure === null && !(interrupts > 0 && code === 130)) {
        firstFailure = { rank, code: code !== null && code !== 0 ? code : 1 };
        const others = [...running];
        log(
          `cohort: rank ${rank} (pid ${child.pid}) ${describeExit(code, signal)}` +
            (others.length > 0
              ? `; waiting up to ${graceMs / 1000} s for rank${others.length > 1 ? "s" : ""} ${others.join(", ")} to stop`
              : ""),
        );
        timers.push(
          setTimeout(() => {
            for (const r of running) {
              log(
                `cohort: rank ${r} (pid ${children[r]?.pid}) did not stop within ${graceMs / 1000} s; terminating it`,
              );
              children[r]?.kill("SIGTERM");
            }
            timers.push(setTimeout(() => running.forEach((r) => children[r]?.kill("SIGKILL")), 5_000));
          }, graceMs),
        );
      }
      if (running.size === 0) {
        for (const t of timers) clearTimeout(t);
        timers = [];
        const failure = firstFailure as { rank: number; code: number } | null;
        resolve(failure !== null ? failure.code : interrupts > 0 ? 130 : 0);
      }
    };
    const threads = Math.max(1, Math.floor(availableParallelism() / n));
    for (let rank = 0; rank < n; rank++) {
      const child = spawn(process.execPath, [...execArgv, script, ...opts.args], {
        stdio: ["ignore", "inherit", "inherit", "ipc"],
        env: {
          ...process.env,
          ...opts.env,
          WORLD_SIZE: String(n),
          RANK: String(rank),
          LOCAL_RANK: String(rank),
          LOCAL_WORLD_SIZE: String(n),
          MASTER_ADDR: "127.0.0.1",
          MASTER_PORT: String(port),
          COHORT_LAUNCHED: "1",
          COHORT_THREADS_PER_RANK: String(threads),
        },
      });
      children.push(child);
      running.add(rank);
      child.on("exit", onExit(rank, child));
      child.on("error", (e) => log(`cohort: rank ${rank} could not start: ${e.message}`));
      opts.onSpawn?.(rank, child);
    }
    log(
      `cohort: ${n} ranks on 127.0.0.1:${port} (pids ${children.map((c) => c.pid).join(", ")}), ${threads} thread${threads > 1 ? "s" : ""} each`,
    );
  });

  const send = (m: LaunchMessage) => {
    for (const r of running) if (children[r]?.connected) children[r]?.send(m);
  };
  // SIGINT (Ctrl-C) and SIGTERM (preemption) alike: every rank stops after the same step with a checkpoint; the
  // launcher then exits 130 / 143. A second signal aborts the ranks.
  let stopSignal = "SIGINT" as NodeJS.Signals;
  const onSignal = (sig: NodeJS.Signals) => {
    interrupts++;
    if (interrupts === 1) {
      stopSignal = sig;
      const again = sig === "SIGINT" ? "Ctrl-C" : sig;
      log(`\ncohort: ${sig}: stopping every rank after this step (saving a checkpoint); ${again} again to abort`);
      send({ type: "stop" });
    } else {
      send({ type: "abort" });
      timers.push(setTimeout(() => running.forEach((r) => children[r]?.kill("SIGKILL")), 5_000));
    }
  };
  process.on("SIGINT", onSignal);
  process.on("SIGTERM", onSignal);
  try {
    const code = await done;
    return code === 130 && interrupts > 0 && stopSignal === "SIGTERM" ? 143 : code;
  } finally {
    process.off("SIGINT", onSignal);
    process.off("SIGTERM", onSignal);
  }
}

/** Whether this process is a rank started by `launchLocal`. */
export function launchedRank(): boolean {
  return process.env.COHORT_LAUNCHED === "1" && typeof process.send === "function";
}

/**
 * In a launched rank: stop requests come from the launcher (the rank ignores SIGINT and SIGTERM, which a terminal
 * or a scheduler may also send it), and the rank exits if the launcher goes away. Returns a function that detaches the handlers.
 */
export function followLauncher(stop: { stop: boolean }, log: (line: string) => void): () => void {
  // the real exit: while rewards run, process.exit throws instead (src/reward/score.ts)
  const exit = process.exit.bind(process);
  const onMessage = (m: LaunchMessage) => {
    if (m?.type === "stop") stop.stop = true;
    else if (m?.type === "abort") exit(130);
  };
  const onDisconnect = () => {
    log("the launcher exited; stopping this rank");
    exit(1);
  };
  const ignore = () => {};
  process.on("message", onMessage);
  process.on("disconnect", onDisconnect);
  // a signal to the whole process group (a terminal's Ctrl-C, a scheduler's SIGTERM) is the launcher's to handle
  process.on("SIGINT", ignore);
  process.on("SIGTERM", ignore);
  // the channel must not keep a finished rank alive
  (process.channel as { unref?: () => void } | undefined)?.unref?.();
  return () => {
    process.off("message", onMessage);
    process.off("disconnect", onDisconnect);
    process.off("SIGINT", ignore);
    process.off("SIGTERM", ignore);
  };
}

/** libtorch threads for a rank: COHORT_THREADS_PER_RANK from the launcher, else the cores split evenly. */
export function threadsPerRank(localWorldSize = Number(process.env.LOCAL_WORLD_SIZE ?? 1)): number {
  const fromLauncher = Number(process.env.COHORT_THREADS_PER_RANK);
  if (Number.isInteger(fromLauncher) && fromLauncher > 0) return fromLauncher;
  const n = Number.isInteger(localWorldSize) && localWorldSize > 0 ? localWorldSize : 1;
  return Math.max(1, Math.floor(availableParallelism() / n));
}
