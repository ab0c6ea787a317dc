/**
 * `cohort serve <model-dir | run-dir | checkpoint>`: the OpenAI-compatible server as a command. Prints
 * `cohort serve: listening on <url> (model <name>)` on stdout once it accepts requests; SIGTERM or SIGINT
 * stops it gracefully (running requests finish, exit code 0); a second signal ends them at once. Keys come from
 * `--api-key` / `--admin-key` or `COHORT_API_KEY` / `COHORT_ADMIN_KEY` (prefer the variables: arguments show in
 * the process list); listening beyond loopback without an API key exits 2 unless `--insecure-no-auth` is given
 * (docs/SECURITY.md).
 * @module
 */
import { existsSync } from "node:fs";
import { type Command, parseCommandArgs } from "../cli/command.js";
import { ConfigError } from "../errors.js";

const usage =
  "cohort serve <model-dir | run-dir | checkpoint> [--host 127.0.0.1] [--port 8000] [--max-concurrency 16] " +
  "[--max-queue 64] [--max-batch 128] [--model-name NAME] [--threads N] [--seed N] [--drain-timeout-ms 30000] " +
  "[--max-body-bytes 1048576] [--batch-wait-ms 20] [--device cpu|cuda|cuda:N] [--precision fp32|bf16|int8] " +
  "[--api-key KEY] [--admin-key KEY] [--insecure-no-auth] [--weights-dir DIR] [--max-push-mb N]";

function intOption(values: Record<string, unknown>, name: string, min: number): number | undefined {
  const v = values[name];
  if (v === undefined) return undefined;
  const n = Number(v);
  if (!Number.isInteger(n) || n < min)
    throw new ConfigError(`--${name}: expected an integer ≥ ${min}, got ${JSON.stringify(v)}\nusage: ${usage}`);
  return n;
}

export const serveCommand: Command = {
  summary: "serve a model over an OpenAI-compatible HTTP API (/v1/completions, /v1/chat/completions, /v1/models)",
  usage,
  async run(args) {
    const parsed = parseCommandArgs(
      args,
      Object.fromEntries<{ type: "string" | "boolean" }>(
        [
          "host",
          "port",
          "max-concurrency",
          "max-queue",
          "max-batch",
          "model-name",
          "threads",
          "seed",
          "drain-timeout-ms",
          "max-body-bytes",
          "batch-wait-ms",
          "device",
          "precision",
          "api-key",
          "admin-key",
          "weights-dir",
          "max-push-mb",
        ]
          .map((k): [string, { type: "string" | "boolean" }] => [k, { type: "string" }])
          .concat([["insecure-no-auth", { type: "boolean" }]]),
      ),
      usage,
    );
    const { values, positionals } = parsed;
    const target = positionals[0];
    if (target === undefined) throw new ConfigError(`missing the model to serve\nusage: ${usage}`);
    const port = intOption(values, "port", 0);
    if (port !== undefined && port > 65535) throw new ConfigError(`--port: expected 0–65535, got ${port}`);
    // keys and the bind address are checked before the model loads: a refused start costs nothing
    const key = (flag: string, env: string) => {
      const v = (values[flag] as string | undefined) ?? process.env[env];
      return v === undefined || v === "" ? undefined : v;
    };
    const { ADMIN_KEY_ENV, API_KEY_ENV, Auth, checkBind } = await import("./auth.js");
    const apiKey = key("api-key", API_KEY_ENV);
    const adminKey = key("admin-key", ADMIN_KEY_ENV);
    new Auth({ apiKey, adminKey }); // validates them
    const host = (values.host as string | undefined) ?? "127.0.0.1";
    const insecureNoAuth = values["insecure-no-auth"] === true;
    checkBind(host, apiKey !== undefined, insecureNoAuth);
    const maxPushMb = intOption(values, "max-push-mb", 1);
    const weightsDir = values["weights-dir"] as string | undefined;
    const device = (values.device as string | undefined) ?? "cpu";
    const t = await import("../tensor/index.js");
    if (!t.isDevice(device))
      throw new ConfigError(`--device: expected cpu, cuda or cuda:N, got ${JSON.stringify(device)}`);
    const asked = (values.precision as string | undefined) ?? "fp32";
    if (asked !== "fp32" && asked !== "bf16" && asked !== "int8")
      throw new ConfigError(`--precision: expected fp32, bf16 or int8, got ${JSON.stringify(asked)}`);
    // int8: fp32 weights in memory, decoded through their int8 quantization (CPU only)
    if (asked === "int8" && device !== "cpu")
      throw new ConfigError(
        `--precision int8 decodes on the CPU only; use --device cpu, or --precision bf16 on ${device}`,
      );
    const precision = asked === "int8" ? "fp32" : asked;
    const unavailable = t.deviceUnavailable(device);
    if (unavailable !== null) throw new ConfigError(`--device ${device}: ${unavailable}, or serve on the CPU`);
    t.setNumThreads(intOption(values, "threads", 1) ?? t.defaultNumThreads());
    const { loadServedModel } = await import("./load.js");
    const { startServer } = await import("./server.js");
    const served = loadServedModel(target, { device, precision });
    const opt = <T>(v: T | undefined, k: string) => (v === undefined ? {} : { [k]: v });
    const server = await startServer(served, {
      host,
      ...opt(apiKey, "apiKey"),
      ...opt(adminKey, "adminKey"),
      insecureNoAuth,
      ...opt(weightsDir, "weightsDir"),
      ...opt(maxPushMb === undefined ? undefined : maxPushMb * (1 << 20), "maxPushBytes"),
      port: port ?? 8000,
      ...opt(intOption(values, "max-concurrency", 1), "maxConcurrency"),
      ...opt(intOption(values, "max-queue", 0), "maxQueue"),
      ...opt(intOption(values, "max-batch", 1), "maxBatchRows"),
      ...opt(values["model-name"] as string | undefined, "modelName"),
      ...opt(intOption(values, "seed", 0), "seed"),
      ...opt(asked === "int8" ? ("int8" as const) : undefined, "decodePrecision"),
      ...opt(intOption(values, "drain-timeout-ms", 0), "drainTimeoutMs"),
      ...opt(intOption(values, "max-body-bytes", 1), "maxBodyBytes"),
      ...opt(intOption(values, "batch-wait-ms", 0), "batchWaitMs"),
    });
    console.log(`cohort serve: listening on ${server.url} (model ${server.modelName}, from ${served.source})`);
    const access =
      apiKey !== undefined
        ? `every route but /health needs the API key${adminKey !== undefined ? "; /v1/reload the admin key" : ""}`
        : adminKey !== undefined
          ? "no API key (completions are open); /v1/reload needs the admin key"
          : "no API key: every route is open to whoever reaches the port";
    process.stderr.write(
      `cohort serve: ${access}; reloads read only inside ${server.weightsDir} (--weights-dir)${existsSync(server.weightsDir) ? "" : ", which does not exist yet"}; pushes up to ${(server.maxPushBytes / (1 << 20)).toFixed(1)} MiB (--max-push-mb)\n`,
    );
    await new Promise<void>((resolve) => {
      let signals = 0;
      const onSignal = (sig: NodeJS.Signals) => {
        signals++;
        if (signals === 1) {
          process.stderr.write(`cohort serve: ${sig}: finishing running requests, then exiting\n`);
          void server.close().then(resolve);
        } else {
          process.stderr.write(`cohort serve: ${sig} again: ending running requests now\n`);
          void server.close({ drainTimeoutMs: 0 });
          server.engine.abortAll();
        }
      };
      process.on("SIGTERM", onSignal);
      process.on("SIGINT", onSignal);
    });
    served.model.dispose();
    process.stderr.write("cohort serve: stopped\n");
    return 0;
  },
};
