/**
 * Episode recording for `cohort serve`: an agent's client carries an episode id (base URL
 * `<server>/episodes/<id>/v1`, or the header `X-Cohort-Episode: <id>` on `/v1/...`), and every chat or
 * completion request under it is recorded as a turn:
 *
 * ```
 * turn = { index, promptIds, completionIds, logprobs (of the sampled tokens, under the policy that sampled
 *          them, at the request's temperature), policyVersion, temperature, finishReason, status, text, toolCalls }
 * ```
 * - Episodes are opened explicitly (`POST /episodes`, or `Recorder.open` in process); a request under an
 *   unknown or closed id is a 404 that says how to open one. Each episode keeps its own turns, in the order
 *   its requests arrived, so concurrent episodes never mix.
 * - A turn is reserved when its request is accepted and completed when it ends: `complete`, `cancelled` (the
 *   client went away or the server shut down; a streamed turn keeps the tokens sent before the cut) or
 *   `failed` (decoding failed). Closing an episode returns its turns; a turn still running is recorded as it
 *   ends but no longer changes the closed record (`status: "running"` there).
 * - Tool calls the model made in an episode are remembered by id with the exact text it wrote, so when the
 *   agent sends the conversation back the server renders those calls token for token (tool-calls.ts).
 * @module
 */
import { randomBytes } from "node:crypto";
import type { FinishReason } from "../model/sampler.js";
import { ApiError } from "./protocol.js";

export const EPISODE_HEADER = "x-cohort-episode";

/** Episode ids: what fits in a URL path segment without escaping. */
export const EPISODE_ID = /^[A-Za-z0-9._~-]{1,128}$/;

export type TurnStatus = "running" | "complete" | "cancelled" | "failed";

export interface RecordedTurn {
  /** Order of arrival within the episode (0-based). */
  index: number;
  endpoint: "chat" | "completion";
  promptIds: number[];
  completionIds: number[];
  /** log π(token) of each completion token under the weights that sampled it, at `temperature` (1 when greedy). */
  logprobs: number[];
  /** The weights version that sampled the turn. */
  policyVersion: number;
  temperature: number;
  finishReason: FinishReason | null;
  status: TurnStatus;
  /** The response text (before tool-call parsing). */
  text: string;
  /** Tool calls parsed from the completion. */
  toolCalls: { id: string; name: string; arguments: string }[];
  startedMs: number;
  endedMs: number | null;
}

export interface EpisodeRecord {
  id: string;
  turns: RecordedTurn[];
  open: boolean;
}

interface Episode {
  id: string;
  turns: RecordedTurn[];
  rawCalls: Map<string, string>;
  open: boolean;
}

export interface RecorderOptions {
  /** Episodes open at once at most (opening more is a 429). Default 4096. */
  maxOpen?: number;
}

export class Recorder {
  readonly #episodes = new Map<string, Episode>();
  readonly #maxOpen: number;
  /**
   * The policy version recorded with each turn; null: the engine's weights version (+1 per reload). A trainer
   * serving its own policy sets it to the number of updates the weights have had.
   */
  policyVersion: number | null = null;

  constructor(opts: RecorderOptions = {}) {
    this.#maxOpen = opts.maxOpen ?? 4096;
  }

  /** Opens an episode (a fresh random id unless one is given). */
  open(id?: string): string {
    const eid = id ?? `ep-${randomBytes(9).toString("hex")}`;
    if (!EPISODE_ID.test(eid))
      throw new ApiError(
        400,
        `id: episode ids are 1–128 characters of A-Z a-z 0-9 . _ ~ - (got ${JSON.stringify(eid)})`,
        "id",
      );
    if (this.#episodes.has(eid)) throw new ApiError(409, `episode "${eid}" is already open`, "id");
    if (this.#episodes.size >= this.#maxOpen)
      throw new ApiError(429, `${this.#maxOpen} episodes are open already; close some (DELETE /episodes/<id>)`);
    this.#episodes.set(eid, { id: eid, turns: [], rawCalls: new Map(), open: true });
    return eid;
  }

  #get(id: string): Episode {
    const ep = this.#episodes.get(id);
    if (ep === undefined)
      throw new ApiError(
        404,
        `episode "${id}" is not open on this server; open one with POST /episodes (its answer holds the base URL) and send requests to /episodes/<id>/v1/...`,
        "episode",
      );
    return ep;
  }

  /** Throws the 404 of an unknown episode. */
  check(id: string): void {
    this.#get(id);
  }

  /** A copy of an episode's record. */
  get(id: string): EpisodeRecord {
    const ep = this.#get(id);
    return { id, open: ep.open, turns: ep.turns.map((t) => ({ ...t })) };
  }

  /** Closes an episode and returns its record (turns still running are marked so). */
  close(id: string): EpisodeRecord {
    const rec = this.get(id);
    this.#episodes.delete(id);
    return { ...rec, open: false };
  }

  get openCount(): number {
    return this.#episodes.size;
  }

  /** The text the model wrote for a tool call of this episode. */
  rawCall(id: string, callId: string): string | undefined {
    return this.#episodes.get(id)?.rawCalls.get(callId);
  }

  /** Reserves the next turn of an episode for an accepted request. */
  begin(
    id: string,
    t: { endpoint: "chat" | "completion"; promptIds: number[]; temperature: number; policyVersion: number },
  ): RecordedTurn {
    const ep = this.#get(id);
    const turn: RecordedTurn = {
      index: ep.turns.length,
      endpoint: t.endpoint,
      promptIds: [...t.promptIds],
      completionIds: [],
      logprobs: [],
      policyVersion: this.policyVersion ?? t.policyVersion,
      temperature: t.temperature,
      finishReason: null,
      status: "running",
      text: "",
      toolCalls: [],
      startedMs: Date.now(),
      endedMs: null,
    };
    ep.turns.push(turn);
    return turn;
  }

  /** Ends a turn (the object `begin` returned); a closed episode's record is not changed any more. */
  end(
    id: string,
    turn: RecordedTurn,
    r: {
      status: Exclude<TurnStatus, "running">;
      tokens: readonly number[];
      logprobs: readonly number[];
      finishReason: FinishReason | null;
      text: string;
      toolCalls?: { id: string; name: string; arguments: string; raw: string }[];
      policyVersion?: number;
    },
  ): void {
    const ep = this.#episodes.get(id);
    if (ep === undefined || ep.turns[turn.index] !== turn) return;
    turn.status = r.status;
    turn.completionIds = [...r.tokens];
    turn.logprobs = [...r.logprobs];
    turn.finishReason = r.finishReason;
    turn.text = r.text;
    if (r.policyVersion !== undefined && this.policyVersion === null) turn.policyVersion = r.policyVersion;
    turn.toolCalls = (r.toolCalls ?? []).map(({ raw, ...c }) => {
      ep.rawCalls.set(c.id, raw);
      return c;
    });
    turn.endedMs = Date.now();
  }
}
