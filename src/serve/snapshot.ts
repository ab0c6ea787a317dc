/**
 * Checksums of weight snapshots, shared by the trainer's side (which names the SHA-256 of what it wrote) and
 * `cohort serve` (which checks it before swapping weights): the hex SHA-256 of a safetensors file's bytes.
 * @module
 */
import { createHash } from "node:crypto";
import { closeSync, existsSync, openSync, readSync, statSync } from "node:fs";
import { join } from "node:path";

/** A SHA-256 as the wire carries it: 64 hex digits. */
export const SHA256_HEX = /^[0-9a-fA-F]{64}$/;

/** The header a pushed snapshot's SHA-256 travels in. */
export const SHA256_HEADER = "x-cohort-sha256";

export function sha256Bytes(bytes: Uint8Array): string {
  return createHash("sha256").update(bytes).digest("hex");
}

/** SHA-256 of everything an open file holds (read from byte 0; the descriptor's position is not used). */
export function sha256Fd(fd: number): string {
  const h = createHash("sha256");
  const buf = Buffer.allocUnsafe(1 << 24);
  for (let pos = 0; ; ) {
    const n = readSync(fd, buf, 0, buf.length, pos);
    if (n === 0) break;
    h.update(buf.subarray(0, n));
    pos += n;
  }
  return h.digest("hex");
}

export function sha256File(path: string): string {
  const fd = openSync(path, "r");
  try {
    return sha256Fd(fd);
  } finally {
    closeSync(fd);
  }
}

/**
 * The safetensors file a snapshot path stands for: the file itself, or a model directory's single
 * `model.safetensors`; null for a sharded directory (no one file to check).
 */
export function snapshotFile(path: string): string | null {
  if (!statSync(path).isDirectory()) return path;
  const single = join(path, "model.safetensors");
  return existsSync(single) && !existsSync(join(path, "model.safetensors.index.json")) ? single : null;
}
