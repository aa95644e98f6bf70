// Starts the real `deepserve serve` binary on a free port for end-to-end tests and stops it.
// DEEPSERVE_BINARY: the binary (default <repo>/build/release/deepserve). DEEPSERVE_CACHE_DIR: where the
// embedded tiny model is made once (default <tmp>/deepserve-e2e-cache, shared by the test files).
import { spawn } from "node:child_process";
import os from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";

export const repoRoot =
  process.env.DEEPSERVE_SOURCE_DIR ?? path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..", "..");
export const binary = process.env.DEEPSERVE_BINARY ?? path.join(repoRoot, "build", "release", "deepserve");
export const cacheDir = process.env.DEEPSERVE_CACHE_DIR ?? path.join(os.tmpdir(), "deepserve-e2e-cache");

/** Starts `deepserve serve --port 0 ...args`; resolves once /health answers 200.
 *  Returns { baseURL, url, proc, logs(), stop() }. */
export async function startServer(args = [], { timeoutMs = 300_000 } = {}) {
  const proc = spawn(binary, ["serve", "--port", "0", ...args], {
    env: { ...process.env, DEEPSERVE_CACHE_DIR: cacheDir },
    stdio: ["ignore", "pipe", "pipe"],
  });
  let out = "";
  let err = "";
  proc.stdout.on("data", (d) => (out += d));
  proc.stderr.on("data", (d) => (err += d));
  const exited = new Promise((resolve) => proc.on("exit", (code, signal) => resolve({ code, signal })));

  const deadline = Date.now() + timeoutMs;
  let url;
  while (!url) {
    const m = out.match(/on (http:\/\/[^\s]+)/);
    if (m) url = m[1];
    else if (proc.exitCode !== null) throw new Error(`deepserve exited (${proc.exitCode}) before listening:\n${err}`);
    else if (Date.now() > deadline) throw new Error(`deepserve did not listen within ${timeoutMs} ms:\n${err}`);
    else await new Promise((r) => setTimeout(r, 100));
  }
  for (;;) {
    try {
      const r = await fetch(`${url}/health`);
      if (r.status === 200) break;
    } catch {}
    if (Date.now() > deadline) throw new Error("deepserve /health never answered 200");
    await new Promise((r) => setTimeout(r, 100));
  }
  return {
    url,
    baseURL: `${url}/v1`,
    proc,
    logs: () => err,  // the server logs to stderr
    /** SIGTERM, then the exit status ({code, signal}). */
    async stop() {
      if (proc.exitCode === null) proc.kill("SIGTERM");
      const t = setTimeout(() => proc.kill("SIGKILL"), 20_000);
      const r = await exited;
      clearTimeout(t);
      return r;
    },
  };
}

/** Runs `deepserve serve ...args` expecting it to refuse; resolves {code, stderr}. */
export function runServeExpectingExit(args) {
  return new Promise((resolve) => {
    const proc = spawn(binary, ["serve", ...args], {
      env: { ...process.env, DEEPSERVE_CACHE_DIR: cacheDir },
      stdio: ["ignore", "pipe", "pipe"],
    });
    let err = "";
    proc.stderr.on("data", (d) => (err += d));
    const t = setTimeout(() => proc.kill("SIGKILL"), 60_000);
    proc.on("exit", (code) => {
      clearTimeout(t);
      resolve({ code, stderr: err });
    });
  });
}
