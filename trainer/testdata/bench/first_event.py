"""Seconds from starting a built thaw to its first progress event.

Runs the command N times on a pseudo-terminal (so thaw draws its progress
line), each with a fresh --store, and prints every time and the median,
with the CPU seconds (user + system) the process had used by then, which a
busy machine disturbs less than the wall time:

    python3 first_event.py 5 ./thaw train --model digits-cnn --data digits-5to9 --shots 1
"""
import os, pty, sys, time, select, statistics, shutil, tempfile
def once(cmd):
    st = tempfile.mkdtemp()
    t0 = time.perf_counter()
    pid, fd = pty.fork()
    if pid == 0:
        os.execv(cmd[0], cmd + ["--store", st])
    buf = b""; first = None
    while True:
        r, _, _ = select.select([fd], [], [], 60)
        if not r: break
        try: data = os.read(fd, 4096)
        except OSError: break
        if not data: break
        buf += data
        if first is None and b"\r" in data and b"/" in buf.split(b"\n")[-1]:
            first = time.perf_counter() - t0
            with open(f"/proc/{pid}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
            cpu.append((int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK"))
            os.kill(pid, 9)
    os.waitpid(pid, 0)
    shutil.rmtree(st, ignore_errors=True)
    return first
cpu = []
n = int(sys.argv[1]); cmd = sys.argv[2:]
ts = [once(cmd) for _ in range(n)]
print("first progress event (s):", " ".join(f"{t:.3f}" if t else "none" for t in ts), " median", f"{statistics.median([t for t in ts if t]):.3f}")
print("CPU used by then (s):", " ".join(f"{c:.2f}" for c in cpu), " median", f"{statistics.median(cpu):.2f}")
