// A stand-in rollout worker: an OpenAI-compatible `/v1/completions` whose completions depend only on the
// request (prompt ids, seed, choice index), never on weights, so two runs that send the same requests train on
// the same batches. With `sglang`, it also speaks SGLang's weight API (`GET /get_model_info`,
// `POST /update_weights_from_disk`), checking the request shape and that `model_path` is a model directory
// the project's own `readModelDir` loads. It logs every request; `GET /log` returns the log.
//
// In this process: `await startStandIn({ sglang: true })`. As a separate process (so that it answers while the
// trainer's process is blocked): `node --import tsx test/serve/standin.ts [--sglang]` prints
// "listening on http://127.0.0.1:<port>"; `--delay-ms N` answers completions after N ms.
import { createServer, type IncomingMessage, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import { pathToFileURL } from "node:url";
import { readModelDir } from "../../src/io/hf.js";
import { dispose } from "../../src/tensor/index.js";

export interface StandInOptions {
  /** Answer SGLang's weight API. */
  sglang?: boolean;
  /** The answer to every `update_weights_from_disk` that passes the checks (default success). */
  updateResult?: { status: number; success: boolean; message: string };
  /** Vocabulary size of the model the trainer trains (token ids are drawn below it, above the 3 special ids). */
  vocabSize?: number;
  eosId?: number;
  /** Answer completions after this long (a worker busy generating elsewhere; this process stays idle). */
  delayMs?: number;
}

export interface LoggedRequest {
  /** Date.now() when the request's body had arrived. */
  at: number;
  path: string;
  seed?: number;
  prompt?: number[];
  n?: number;
}

/** What an accepted `update_weights_from_disk` loaded: tensor names with their shapes, and a checksum. */
export interface LoadedSnapshot {
  modelPath: string;
  shapes: Record<string, number[]>;
  checksum: number;
}

export interface StandIn {
  url: string;
  log: LoggedRequest[];
  loads: LoadedSnapshot[];
  /** Refusals of malformed `update_weights_from_disk` requests, with why. */
  refused: string[];
  stop(): Promise<void>;
}

/** A small integer hash (the same request gives the same completion). */
function hash(xs: readonly number[]): number {
  let h = 2166136261;
  for (const x of xs) h = Math.imul(h ^ (x >>> 0), 16777619) >>> 0;
  return h;
}

function send(res: ServerResponse, status: number, body: unknown): void {
  const text = JSON.stringify(body);
  res.writeHead(status, { "content-type": "application/json", "content-length": String(Buffer.byteLength(text)) });
  res.end(text);
}

function completion(body: Record<string, unknown>, o: { vocabSize: number; eosId: number }) {
  const prompt = body.prompt as number[];
  const n = (body.n as number | undefined) ?? 1;
  const seed = (body.seed as number | undefined) ?? 0;
  const maxTokens = (body.max_tokens as number | undefined) ?? 16;
  const choices = Array.from({ length: n }, (_, j) => {
    const h = hash([...prompt, seed + j]);
    const len = Math.min(maxTokens, 1 + (h % 4));
    const ids = Array.from({ length: len }, (_, t) => 3 + (hash([h, t]) % (o.vocabSize - 3)));
    if (len < maxTokens) ids.push(o.eosId);
    return {
      index: j,
      text: "",
      logprobs: {
        token_logprobs: ids.map((_, t) => -0.5 - ((h >>> t) % 7) / 4),
        tokens: ids.map((i) => `token_id:${i}`),
      },
      finish_reason: len < maxTokens ? "stop" : "length",
      token_ids: ids,
    };
  });
  return { id: `cmpl-${seed}`, object: "text_completion", model: body.model, choices };
}

/** The checks of `update_weights_from_disk`: the body is `{model_path: string}` and names a loadable model dir. */
function loadSnapshot(body: unknown): LoadedSnapshot | string {
  if (typeof body !== "object" || body === null || Array.isArray(body)) return "the body is not a JSON object";
  const keys = Object.keys(body);
  const modelPath = (body as { model_path?: unknown }).model_path;
  if (typeof modelPath !== "string" || modelPath === "") return "model_path: expected a non-empty string";
  // SGLang builds its request object from the body: a key it does not know is a TypeError there
  const unknown = keys.filter(
    (k) => !["model_path", "load_format", "abort_all_requests", "weight_version"].includes(k),
  );
  if (unknown.length > 0) return `unexpected keyword argument(s) ${unknown.join(", ")}`;
  try {
    const dir = readModelDir(modelPath);
    const shapes: Record<string, number[]> = {};
    let checksum = 0;
    for (const [name, t] of Object.entries(dir.tensors)) {
      shapes[name] = [...t.shape];
      checksum += Array.from(t.to("f64").data() as Float64Array).reduce((a, v, i) => a + v * ((i % 13) + 1), 0);
    }
    dispose(dir.tensors);
    if (dir.config.model_type === undefined) return `${modelPath}/config.json has no model_type`;
    return { modelPath, shapes, checksum };
  } catch (e) {
    return `Failed to load weights from ${modelPath}: ${(e as Error).message}`;
  }
}

export async function startStandIn(opts: StandInOptions = {}): Promise<StandIn> {
  const o = { vocabSize: opts.vocabSize ?? 99, eosId: opts.eosId ?? 2 };
  const log: LoggedRequest[] = [];
  const loads: LoadedSnapshot[] = [];
  const refused: string[] = [];
  const handle = (req: IncomingMessage, raw: string, res: ServerResponse) => {
    const path = (req.url ?? "").split("?")[0] as string;
    let body: Record<string, unknown> = {};
    try {
      body = raw === "" ? {} : JSON.parse(raw);
    } catch {
      return send(res, 400, { error: { message: "the body is not JSON" } });
    }
    const entry: LoggedRequest = { at: Date.now(), path };
    if (path === "/v1/completions") {
      Object.assign(entry, { seed: body.seed, prompt: body.prompt, n: body.n });
      log.push(entry);
      if (!Array.isArray(body.prompt)) return send(res, 400, { error: { message: "prompt: expected token ids" } });
      const answer = completion(body, o);
      if (opts.delayMs) setTimeout(() => send(res, 200, answer), opts.delayMs);
      else send(res, 200, answer);
      return;
    }
    log.push(entry);
    if (path === "/log") return send(res, 200, log);
    if (path === "/health") return send(res, 200, { status: "ok" });
    if (path === "/v1/models") return send(res, 200, { object: "list", data: [{ id: "stand-in" }] });
    if (opts.sglang && path === "/get_model_info" && req.method === "GET")
      return send(res, 200, { model_path: "stand-in", is_generation: true });
    if (opts.sglang && path === "/update_weights_from_disk" && req.method === "POST") {
      const r = loadSnapshot(body);
      if (typeof r === "string") {
        refused.push(r);
        return send(res, 400, { success: false, message: r });
      }
      const answer = opts.updateResult ?? { status: 200, success: true, message: "Succeeded to update model weights." };
      if (answer.success) loads.push(r);
      return send(res, answer.status, { success: answer.success, message: answer.message, num_paused_requests: 0 });
    }
    return send(res, 404, { detail: "Not Found" });
  };
  const server = createServer((req, res) => {
    let raw = "";
    req.setEncoding("utf8");
    req.on("data", (c) => {
      raw += c;
    });
    req.on("end", () => handle(req, raw, res));
  });
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    log,
    loads,
    refused,
    stop: () =>
      new Promise<void>((r) => {
        server.closeAllConnections();
        server.close(() => r());
      }),
  };
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? "").href) {
  const delay = process.argv.indexOf("--delay-ms");
  const s = await startStandIn({
    sglang: process.argv.includes("--sglang"),
    ...(delay > 0 ? { delayMs: Number(process.argv[delay + 1]) } : {}),
  });
  process.stdout.write(`listening on ${s.url}\n`);
  process.on("SIGTERM", () => void s.stop().then(() => process.exit(0)));
}
