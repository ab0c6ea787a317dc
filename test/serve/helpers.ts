// Starts `cohort serve` as a child process on a free loopback port and talks to it with raw HTTP.
import { type ChildProcess, spawn } from "node:child_process";
import { request } from "node:http";

export interface ServeProcess {
  url: string;
  child: ChildProcess;
  stderr: () => string;
  exited: Promise<number | null>;
  stop(): Promise<number | null>;
}

export async function startServe(target: string, args: string[] = []): Promise<ServeProcess> {
  const child = spawn(process.execPath, [
    "--import",
    "tsx",
    "src/cli/main.ts",
    "serve",
    target,
    "--port",
    "0",
    "--threads",
    "1",
    ...args,
  ]);
  let err = "";
  let out = "";
  child.stderr.on("data", (d) => {
    err += d;
  });
  const exited = new Promise<number | null>((res) => child.on("exit", (code) => res(code)));
  const url = await new Promise<string>((resolve, reject) => {
    child.stdout.on("data", (d) => {
      out += d;
      const m = /listening on (http:\/\/\S+)/.exec(out);
      if (m) resolve(m[1] as string);
    });
    void exited.then((code) => reject(new Error(`cohort serve exited with ${code} before listening:\n${err}`)));
  });
  return {
    url,
    child,
    stderr: () => err,
    exited,
    async stop() {
      if (child.exitCode === null) child.kill("SIGTERM");
      return exited;
    },
  };
}

export interface HttpResult {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  body: string;
  // biome-ignore lint/suspicious/noExplicitAny: response bodies are checked field by field by the tests
  json: () => any;
}

/** One request; `body` objects are sent as JSON, strings and buffers verbatim; `headers` add to (or replace) the JSON content type. */
export function http(
  url: string,
  method: string,
  body?: unknown,
  headers: Record<string, string> = {},
): Promise<HttpResult> {
  return new Promise((resolve, reject) => {
    const data =
      body === undefined
        ? undefined
        : typeof body === "string" || body instanceof Uint8Array
          ? body
          : JSON.stringify(body);
    const head = { ...(data ? { "content-type": "application/json" } : {}), ...headers };
    const req = request(url, { method, headers: head }, (res) => {
      let text = "";
      res.setEncoding("utf8");
      res.on("data", (c) => {
        text += c;
      });
      res.on("end", () =>
        resolve({ status: res.statusCode ?? 0, headers: res.headers, body: text, json: () => JSON.parse(text) }),
      );
      res.on("error", reject);
    });
    req.on("error", reject);
    req.end(data);
  });
}

/** Server-sent events of a streaming request: `onEvent` sees each `data:` payload; resolves with them all. */
export function sse(
  url: string,
  body: unknown,
  onEvent: (data: string, abort: () => void) => void = () => {},
): Promise<{ status: number; events: string[]; aborted: boolean }> {
  return new Promise((resolve, reject) => {
    const events: string[] = [];
    let aborted = false;
    const req = request(url, { method: "POST", headers: { "content-type": "application/json" } }, (res) => {
      let buf = "";
      res.setEncoding("utf8");
      const abort = () => {
        aborted = true;
        req.destroy();
        resolve({ status: res.statusCode ?? 0, events, aborted });
      };
      res.on("data", (c) => {
        buf += c;
        for (let i = buf.indexOf("\n\n"); i >= 0; i = buf.indexOf("\n\n")) {
          const frame = buf.slice(0, i);
          buf = buf.slice(i + 2);
          if (!frame.startsWith("data: ")) continue;
          const data = frame.slice(6);
          events.push(data);
          if (!aborted) onEvent(data, abort);
        }
      });
      res.on("end", () => resolve({ status: res.statusCode ?? 0, events, aborted }));
      res.on("error", (e) => (aborted ? undefined : reject(e)));
    });
    req.on("error", (e) => (aborted ? undefined : reject(e)));
    req.end(JSON.stringify(body));
  });
}

export const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Polls `f` until it returns true (or fails after `timeoutMs`). */
export async function waitFor(f: () => Promise<boolean> | boolean, what: string, timeoutMs = 20_000): Promise<void> {
  const end = Date.now() + timeoutMs;
  while (!(await f())) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await sleep(20);
  }
}
