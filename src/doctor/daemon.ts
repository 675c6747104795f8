// The banger daemon's health, asked over its socket. The daemon itself is being built on another
// branch; this check needs nothing from it but the socket's place ($XDG_RUNTIME_DIR/banger/
// banger.sock) and GET /v1/version, so it works before and after the daemon lands. When the
// daemon brings its own client, a check built on it replaces this one in checks.ts.
import path from "node:path";
import { errorCode } from "./common.ts";
import type { Check, CheckResult, DoctorContext } from "./types.ts";

export interface DaemonCheckOptions {
  /** How long the daemon has to answer; a live daemon answers in milliseconds. */
  timeoutMs?: number;
}

export const DAEMON_SOCKET_NAME = "banger.sock";

/** The version from /v1/version's body: {"version": "..."}, a JSON string, or plain text. */
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
        answer = await ctx.probe.httpGet(socket, "/v1/version", timeoutMs);
      } catch (err) {
        const why = err instanceof Error && err.name === "TimeoutError" ? `no answer within ${timeoutMs / 1000} s` : errorCode(err);
        return { status: "fail", summary: `stale socket ${socket}: nothing answers (${why})`, fix: stopOrRemove };
      }
      if (answer.status < 200 || answer.status > 299) {
        // Something lives there, but not a daemon that speaks this banger's API.
        return { status: "warn", summary: `a daemon answers on ${socket} but GET /v1/version gave HTTP ${answer.status}`, fix: `restart it: ${stopOrRemove}` };
      }
      return { status: "pass", summary: `daemon ${versionOf(answer.body)} answers on ${socket}` };
    },
  };
}
