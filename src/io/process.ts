// Whether a process still runs: the owner check behind lock files (the blob cache) and staging
// directories (the image store). EPERM means it exists under another user.
export function pidAlive(pid: number): boolean {
  if (!Number.isInteger(pid) || pid <= 0) return false;
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === "EPERM";
  }
}
