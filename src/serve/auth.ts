/**
 * Who may use `cohort serve` (docs/SECURITY.md):
 *
 * - the API key (`--api-key` / `COHORT_API_KEY`) guards every route but `GET /health`: requests send
 *   `Authorization: Bearer <key>`, as OpenAI clients, vLLM and SGLang do; a missing or wrong key gets a 401 with
 *   OpenAI's error body (`code: "invalid_api_key"`);
 * - the admin key (`--admin-key` / `COHORT_ADMIN_KEY`), when set, is the only key that may load weights
 *   (`POST /v1/reload`, by path or by push); it is accepted on the other routes too. Without it the API key
 *   guards reloads;
 * - listening beyond loopback without an API key is refused unless `--insecure-no-auth` says so.
 *
 * Keys are compared in constant time: both sides are hashed (SHA-256) and the digests compared with
 * `crypto.timingSafeEqual`, so neither the key's length nor its prefix shows in the answer time.
 * @module
 */
import { createHash, timingSafeEqual } from "node:crypto";
import type { IncomingMessage } from "node:http";
import { isIP } from "node:net";
import { ConfigError } from "../errors.js";
import { ApiError } from "./protocol.js";

/** The environment variables `cohort serve` reads its keys from (a flag wins over its variable). */
export const API_KEY_ENV = "COHORT_API_KEY";
export const ADMIN_KEY_ENV = "COHORT_ADMIN_KEY";

const digest = (s: string) => createHash("sha256").update(s, "utf8").digest();

/** One key, held as its digest. */
class Key {
  readonly #digest: Buffer;
  constructor(key: string) {
    this.#digest = digest(key);
  }
  /** Constant-time comparison with `given` (equal-length digests). */
  matches(given: string): boolean {
    return timingSafeEqual(this.#digest, digest(given));
  }
}

/** The bearer token of a request, or null when it sends none (or another scheme). */
export function bearerToken(req: IncomingMessage): string | null {
  const h = req.headers.authorization;
  if (typeof h !== "string") return null;
  const m = /^Bearer[ \t]+(\S+)[ \t]*$/i.exec(h);
  return m ? (m[1] as string) : null;
}

export function unauthorized(message: string): ApiError {
  return new ApiError(401, message, null, "invalid_request_error", "invalid_api_key");
}

/** Checks requests against the server's keys (see the module doc). */
export class Auth {
  readonly #api: Key | null;
  readonly #admin: Key | null;

  constructor(keys: { apiKey?: string | undefined; adminKey?: string | undefined }) {
    for (const [name, k] of [
      ["apiKey (--api-key)", keys.apiKey],
      ["adminKey (--admin-key)", keys.adminKey],
    ] as const) {
      if (k !== undefined && !/^\S+$/.test(k))
        throw new ConfigError(
          `${name}: a key must be a non-empty string without spaces (it is sent as a bearer token)`,
        );
    }
    if (keys.apiKey !== undefined && keys.apiKey === keys.adminKey)
      throw new ConfigError(
        "the admin key equals the API key, so it protects nothing more; choose another admin key or leave it out",
      );
    this.#api = keys.apiKey === undefined ? null : new Key(keys.apiKey);
    this.#admin = keys.adminKey === undefined ? null : new Key(keys.adminKey);
  }

  /** Whether an API key is set (every route but /health needs a key). */
  get required(): boolean {
    return this.#api !== null;
  }

  /** Throws a 401 unless `req` may use an ordinary route (completions, models). */
  checkUse(req: IncomingMessage): void {
    if (this.#api === null) return;
    const token = bearerToken(req);
    if (token === null)
      throw unauthorized(
        "missing API key: this server needs `Authorization: Bearer <key>` (the key it was started with, --api-key or COHORT_API_KEY)",
      );
    // both comparisons always run: the time does not tell which key matched
    const api = this.#api.matches(token);
    const admin = this.#admin?.matches(token) ?? false;
    if (!api && !admin) throw unauthorized("invalid API key: the bearer token is not this server's key");
  }

  /** Throws a 401 unless `req` may load weights (`POST /v1/reload`). */
  checkAdmin(req: IncomingMessage): void {
    const key = this.#admin ?? this.#api;
    if (key === null) return;
    const which = this.#admin !== null ? "admin key (--admin-key or COHORT_ADMIN_KEY)" : "API key";
    const token = bearerToken(req);
    if (token === null)
      throw unauthorized(
        `missing key: loading weights needs \`Authorization: Bearer <key>\` with the server's ${which}`,
      );
    if (!key.matches(token))
      throw unauthorized(`invalid key: loading weights needs the server's ${which}; the bearer token is not it`);
  }
}

/**
 * Whether `host` is a loopback address: 127.0.0.0/8, ::1 (also IPv4-mapped ::ffff:127.x.y.z) or `localhost`.
 * Any other name counts as reachable from elsewhere (it may resolve to any interface).
 */
export function isLoopbackHost(host: string): boolean {
  const h = host
    .trim()
    .toLowerCase()
    .replace(/^\[(.*)\]$/, "$1");
  if (h === "localhost") return true;
  const v = isIP(h);
  if (v === 4) return h.split(".")[0] === "127";
  if (v !== 6) return false;
  const canonical = new URL(`http://[${h}]/`).hostname; // e.g. [::1], [::ffff:7f00:1]
  return canonical === "[::1]" || /^\[::ffff:7f[0-9a-f]{2}:[0-9a-f]{1,4}\]$/.test(canonical);
}

/**
 * Refuses to listen on `host` beyond loopback without an API key, unless `insecureNoAuth` says so: every
 * route (completions, weight loads) would be open to whoever reaches the port.
 */
export function checkBind(host: string, hasApiKey: boolean, insecureNoAuth: boolean): void {
  if (hasApiKey || insecureNoAuth || isLoopbackHost(host)) return;
  throw new ConfigError(
    `--host ${host} is not a loopback address (127.0.0.0/8, ::1, localhost), and no API key is set: anyone who reaches the port could generate and load weights. ` +
      `Set a key with --api-key or ${API_KEY_ENV} (clients send it as \`Authorization: Bearer <key>\`), or pass --insecure-no-auth to serve without one on a network you trust (an --admin-key alone guards only /v1/reload). See docs/SECURITY.md`,
  );
}
