// The banger daemon's health, asked over its socket ($XDG_RUNTIME_DIR/banger/banger.sock) with
// GET /v1/health, which any daemon version answers (src/daemon/protocol.ts), with a 1 s timeout:
// a doctor must answer even when the daemon is wedged, so it does not go through the client
// (which would start a daemon).
import path from "node:path";
import { errorCode } from "./common.ts";
import type { Check, CheckResult, DoctorContext } from "./types.ts";

export interface DaemonCheckOptions {
  /** How long the daemon has to answer; a live daemon answers in milliseconds. */
  timeoutMs?: number;
}

export const DAEMON_SOCKET_NAME = "banger.sock";

/** The version from /v1/health's body (HealthInfo: {"version": "...", ...}), a JSON string, or plain text. */
function versionOf(body: string): string {
  let text = body.trim();
  try {
    const parsed: unknown = JSON.parse(text);
    if (typeof parsed === "string") text = parsed;
    else if (parsed && typeof parsed === "object" && "version" in parsed && typeof parsed.version === "string") text = parsed.version;
  } catch {
    // Not JSON: the text is the version.
  }
  text = text.split("\n")[0]!.trim();
  return text.length > 100 ? `${text.slice(0, 100)}...` : text || "(no version given)";
}

export function daemonCheck(options: DaemonCheckOptions = {}): Check {
  const timeoutMs = options.timeoutMs ?? 1000;
  return {
    id: "daemon",
    async run(ctx: DoctorContext): Promise<CheckResult> {
      const socket = path.join(ctx.paths.runtimeDir, DAEMON_SOCKET_NAME);
      const stopOrRemove = `\`banger daemon stop\`, or remove ${socket}`;
      const kind = ctx.probe.kind(socket);
      // No socket is the normal state between uses, not a fault.
      if (kind === null) return { status: "warn", summary: `daemon not running (it starts on demand; no ${socket})`, fix: "nothing to do; any command that needs the daemon starts it" };
      if (kind !== "socket") return { status: "fail", summary: `${socket} is a ${kind}, not the daemon's socket`, fix: `remove ${socket}` };
      let answer;
      try {
        answer = await ctx.probe.httpGet(socket, "/v1/health", timeoutMs);
      } catch (err) {
        const why = err instanceof Error && err.name === "TimeoutError" ? `no answer within ${timeoutMs / 1000} s` : errorCode(err);
        return { status: "fail", summary: `stale socket ${socket}: nothing answers (${why})`, fix: stopOrRemove };
      }
      if (answer.status < 200 || answer.status > 299) {
        // Something lives there, but not a daemon that speaks this banger's API.
        return { status: "warn", summary: `a daemon answers on ${socket} but GET /v1/health gave HTTP ${answer.status}`, fix: `restart it: ${stopOrRemove}` };
      }
      return { status: "pass", summary: `daemon ${versionOf(answer.body)} answers on ${socket}` };
    },
  };
}
