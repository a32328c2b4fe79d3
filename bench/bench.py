#!/usr/bin/env python3
"""The benchmark driver bench/run.sh calls. Each workload runs ConnectorHost and its reference on the
same machine in the same run, `repeat` times, alternating the two so that a drift of this VM's speed
during the run weighs on both alike, and reports the median. Peak RSS is the host's own
VmHWM, read from /proc while it runs (its agents are not counted)."""
import argparse
import glob
import json
import os
import platform
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time

NOOP = """#!/bin/sh
# A no-op agent: reads its payload, prints a JSON result.
read -r line < "$2" || true
echo '{"status":"success"}'
"""

# The root of the fan-out workload prints one child per item; each child is the no-op.
FANOUT = """#!/bin/sh
read -r line < "$2" || true
if [ "${CONNECTOR_HOST_IS_ROOT_TASK:-0}" = 1 ]; then
    awk -v n="$CHILDREN" 'BEGIN { for (i = 0; i < n; i++) printf "{\\"type\\":\\"child\\",\\"key\\":\\"item:%d\\"}\\n", i }'
fi
echo '{"type":"result","status":"success"}'
"""

FLOOD = """#!/usr/bin/env python3
import sys
block = b"x" * 65536 + b"\\n"
for _ in range(1600):  # 100 MiB
    sys.stdout.buffer.write(block)
"""


class PeakRSS:
    """Polls /proc/<pid>/status for VmHWM (the kernel's own high-water mark) until the process ends."""

    def __init__(self, pid):
        self.pid, self.peak_kb = pid, 0
        self.thread = threading.Thread(target=self.poll, daemon=True)
        self.thread.start()

    def poll(self):
        path = "/proc/%d/status" % self.pid
        while True:
            try:
                with open(path) as handle:
                    for line in handle:
                        if line.startswith("VmHWM:"):
                            self.peak_kb = max(self.peak_kb, int(line.split()[1]))
            except (FileNotFoundError, ProcessLookupError, ValueError):
                return
            time.sleep(0.005)


def timed(command, env=None, cwd=None, shell=False):
    """Wall seconds, the host's peak RSS (MB) and CPU seconds of one run; fails loudly on a non-zero
    exit. The CPU is read from the exited process before it is reaped (`/proc/<pid>/stat` of the
    zombie): its own user+sys, and its waited-for descendants' (a host's agents; for a shell
    pipeline, xargs or parallel and the agents). On these 2 cores both sides are close to
    CPU-bound, so the CPU is what a wall-time ratio is made of."""
    start = time.perf_counter()
    process = subprocess.Popen(command, env=env, cwd=cwd, shell=shell, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    rss = PeakRSS(process.pid)
    with process.stderr:
        stderr = process.stderr.read()
    cpu = exited_cpu(process.pid)
    process.wait()
    elapsed = time.perf_counter() - start
    rss.thread.join(timeout=1)
    if process.returncode != 0:
        sys.exit("benchmark command failed (%d): %s\n%s" % (process.returncode, command, stderr.decode(errors="replace")[-2000:]))
    return elapsed, rss.peak_kb / 1024.0, cpu


def exited_cpu(pid):
    """(own, descendants') CPU seconds of `pid` once it has exited, leaving it unreaped; None
    where /proc or waitid's WNOWAIT is missing."""
    try:
        os.waitid(os.P_PID, pid, os.WEXITED | os.WNOWAIT)
        with open("/proc/%d/stat" % pid) as handle:
            fields = handle.read().rsplit(")", 1)[1].split()
    except (AttributeError, OSError):
        return None
    tick = os.sysconf("SC_CLK_TCK")
    # After the command name: state is field 3, utime/stime/cutime/cstime are fields 14-17.
    utime, stime, cutime, cstime = (int(value) for value in fields[11:15])
    return (utime + stime) / tick, (cutime + cstime) / tick


def write(path, text, mode=0o755):
    with open(path, "w") as handle:
        handle.write(text)
    os.chmod(path, mode)


def payload_files(directory, count):
    os.makedirs(directory, exist_ok=True)
    for i in range(count):
        with open(os.path.join(directory, "p%05d.json" % i), "w") as handle:
            json.dump({"payloadVersion": 1, "taskId": "t%d" % i, "connectorFormFields": {}}, handle)
    return directory


def host_config(path, state, handler_command, connections, extra_handler=None, concurrency=2):
    handler = {"command": [handler_command], "taskTypes": ["t"], "timeoutSeconds": 600}
    handler.update(extra_handler or {})
    config = {
        "version": 1, "state": state, "concurrency": concurrency, "limits": {"maxChildrenPerTask": 100000},
        "handlers": {"bench": handler},
        "connections": {name: {"handler": "bench", "tasks": [{"type": "t", "every": "1h"}]} for name in connections},
    }
    with open(path, "w") as handle:
        json.dump(config, handle)


def fresh_state(state):
    for suffix in ("", "-wal", "-shm", ".lock"):
        if os.path.exists(state + suffix):
            os.unlink(state + suffix)


def median_of(runs):
    return statistics.median(r[0] for r in runs), max(r[1] for r in runs)


def cpu_of(runs):
    """Median own and descendants' CPU seconds of `timed` runs, or None."""
    if any(r[2] is None for r in runs):
        return None
    return {"own": statistics.median(r[2][0] for r in runs), "descendants": statistics.median(r[2][1] for r in runs),
            "wall": statistics.median(r[0] for r in runs)}


def machine():
    model = "unknown"
    try:
        with open("/proc/cpuinfo") as handle:
            for line in handle:
                if line.startswith("model name"):
                    model = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    return {"cores": os.cpu_count(), "cpu": model, "kernel": platform.release(), "python": platform.python_version()}


def postgres_shared(host, work, noop, names, tasks, repeat):
    """Median seconds (and every run) for 2 daemons sharing a throwaway PostgreSQL to run `tasks`
    due no-op tasks, or None when no PostgreSQL server is installed."""
    script = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "scripts", "throwaway-postgres.sh")
    # Its own directory under /tmp: the server runs as `postgres` when we are root, and cannot
    # enter the (private) work directory.
    server = tempfile.mkdtemp(prefix="connector-host-bench-pg-")
    started = subprocess.run(["bash", script, "start", server, "--durable"], capture_output=True, text=True)
    if started.returncode != 0:
        print("PostgreSQL row skipped: " + started.stderr.strip(), file=sys.stderr)
        return None
    psql = sorted(glob.glob("/usr/lib/postgresql/*/bin/psql"))[-1]
    try:
        runs = []
        for attempt in range(repeat):
            url = subprocess.run(["bash", script, "createdb", server, "bench%d" % attempt], check=True, capture_output=True, text=True).stdout.strip()
            config = os.path.join(work, "pg%d.json" % attempt)
            host_config(config, url, noop, names + ["c-warm"])
            subprocess.run([host, "run", "--config", config, "--connection", "c-warm"], check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            # Waiting happens in the server: one backend re-counts closed scans every 20 ms, instead
            # of a psql process (a new backend) per poll competing with the hosts for the 2 cores.
            wait = "DO $$ BEGIN WHILE (SELECT count(*) FROM scans WHERE status = 'success') < %d LOOP PERFORM pg_sleep(0.02); END LOOP; END $$" % (tasks + 1)
            waiter = subprocess.Popen([psql, "-X", "-q", "-h", server, "-U", "postgres", "-d", "bench%d" % attempt, "-c", wait], stdout=subprocess.DEVNULL)
            start = time.perf_counter()
            daemons = [subprocess.Popen([host, "daemon", "--config", config, "--log-level", "warning"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL) for _ in range(2)]
            try:
                while True:
                    try:
                        waiter.wait(timeout=0.5)
                        break
                    except subprocess.TimeoutExpired:
                        if any(d.poll() is not None for d in daemons):
                            raise RuntimeError("a daemon exited early")
                        # Idle daemons with scans still open are a bug to report, not to wait out.
                        if time.perf_counter() - start > 120:
                            raise RuntimeError("the daemons left scans open for 120 s")
                if waiter.returncode != 0:
                    raise RuntimeError("psql waiting for the scans failed")
                runs.append(time.perf_counter() - start)
            finally:
                if waiter.poll() is None:
                    waiter.kill()
                for d in daemons:
                    d.send_signal(signal.SIGTERM)
                for d in daemons:
                    d.wait(timeout=60)
        return statistics.median(runs), runs
    finally:
        subprocess.run(["bash", script, "stop", server], capture_output=True)


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--bin", required=True)
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--out", required=True)
    parser.add_argument("--build", default="debug", help="how the binaries were built, for the report")
    options = parser.parse_args()
    host = os.path.join(options.bin, "connector-host")
    store_bench = os.path.join(options.bin, "connector-host-bench")
    quick = options.quick
    # Five, not three: whole runs of this VM differ by 10% and more from one minute to the next.
    repeat = 1 if quick else 5
    tasks = 20 if quick else 1000
    children = 50 if quick else 10000
    work = tempfile.mkdtemp(prefix="connector-host-bench-")
    rows = []

    def row(workload, ours, reference, ratio, target, met, unit="s", samples=None, cpu=None):
        entry = {"workload": workload, "connectorHost": ours, "reference": reference, "ratio": ratio, "target": target, "met": met, "unit": unit}
        # Every repetition, so a reader can see the spread behind a median (this VM's is wide).
        if samples:
            entry["samples"] = samples
        if cpu and all(cpu.values()):
            entry["cpuSeconds"] = cpu
        rows.append(entry)

    try:
        noop = os.path.join(work, "noop.sh")
        write(noop, NOOP)
        payloads = payload_files(os.path.join(work, "payloads"), tasks)
        listing = " ".join(sorted(os.path.join(payloads, name) for name in os.listdir(payloads)))

        # 1. N no-op tasks, full durable path, concurrency 2. One connection per task; c-warm is
        # run first so the measured pass has reconciled state and runs exactly N tasks.
        config = os.path.join(work, "noop.json")
        state = os.path.join(work, "state", "noop.sqlite")
        names = ["c%05d" % i for i in range(tasks)]
        host_config(config, state, noop, names + ["c-warm"])
        joblog = os.path.join(work, "joblog")
        parallel = shutil.which("parallel")
        host_runs, xargs_runs, par_runs = [], [], []
        for _ in range(repeat):
            fresh_state(state)
            subprocess.run([host, "run", "--config", config, "--connection", "c-warm"], check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            host_runs.append(timed([host, "run", "--config", config, "--log-level", "warning"]))
            xargs_runs.append(timed("printf '%%s\\n' %s | xargs -P2 -n1 %s --payload" % (listing, noop), shell=True))
            if parallel:
                par_runs.append(timed("printf '%%s\\n' %s | parallel -j2 --joblog %s %s --payload {}" % (listing, joblog, noop), shell=True))
        ours, ours_rss = median_of(host_runs)
        xargs = median_of(xargs_runs)[0]
        ratio = ours / xargs
        row("%d no-op tasks, concurrency 2 (vs xargs -P2)" % tasks, ours, xargs, ratio, "<= 1.2x", ratio <= 1.2,
            samples={"connectorHost": [r[0] for r in host_runs], "reference": [r[0] for r in xargs_runs]},
            cpu={"connectorHost": cpu_of(host_runs), "reference": cpu_of(xargs_runs)})
        if parallel:
            par = median_of(par_runs)[0]
            row("%d no-op tasks, concurrency 2 (vs GNU parallel -j2 --joblog)" % tasks, ours, par, par / ours, ">= 5x faster", par / ours >= 5,
                cpu={"connectorHost": cpu_of(host_runs), "reference": cpu_of(par_runs)})
        else:
            row("%d no-op tasks (vs GNU parallel)" % tasks, ours, None, None, ">= 5x faster", None)

        # 1b. The same N tasks on PostgreSQL, shared by 2 daemons, against the one SQLite `run`
        # above. Timed from the daemons' start until every scan has closed (watched in the server).
        sqlite_ours = ours
        shared = postgres_shared(host, work, noop, names, tasks, repeat)
        pg, pg_runs = shared if shared else (None, None)
        if pg is None:
            row("%d no-op tasks on PostgreSQL, 2 daemons (vs SQLite, 1 run)" % tasks, None, sqlite_ours, None, "<= 1.5x", None)
        else:
            row("%d no-op tasks on PostgreSQL, 2 daemons (vs SQLite, 1 run)" % tasks, pg, sqlite_ours, pg / sqlite_ours, "<= 1.5x", pg / sqlite_ours <= 1.5,
                samples={"connectorHost": pg_runs, "reference": [r[0] for r in host_runs]})

        # 2. One root emitting N children, each a no-op; also the host's peak RSS with N queued.
        fanout = os.path.join(work, "fanout.sh")
        write(fanout, FANOUT)
        config = os.path.join(work, "fanout.json")
        state = os.path.join(work, "state", "fanout.sqlite")
        host_config(config, state, fanout, ["fan"], extra_handler={"env": {"CHILDREN": str(children)}})
        many = payload_files(os.path.join(work, "many"), children + 1)
        fan_runs, xargs_runs = [], []
        for _ in range(repeat):
            fresh_state(state)
            fan_runs.append(timed([host, "run", "--config", config, "--log-level", "warning", "--max-wait", "3600"]))
            xargs_runs.append(timed("ls %s | sed 's#^#%s/#' | xargs -P2 -n1 %s --payload" % (many, many, noop), shell=True))
        ours, fan_rss = median_of(fan_runs)
        xargs = median_of(xargs_runs)[0]
        ratio = ours / xargs
        row("1 root -> %d children, no-op (vs xargs -P2 of %d runs)" % (children, children + 1), ours, xargs, ratio, "<= 1.3x", ratio <= 1.3,
            samples={"connectorHost": [r[0] for r in fan_runs], "reference": [r[0] for r in xargs_runs]},
            cpu={"connectorHost": cpu_of(fan_runs), "reference": cpu_of(xargs_runs)})
        row("%d queued tasks: host peak RSS" % children, fan_rss, None, None, "<= 50 MB", fan_rss <= 50, unit="MB")

        # 3. An agent flooding stdout with 100 MiB against a 16 MiB cap.
        flood = os.path.join(work, "flood.py")
        write(flood, FLOOD)
        config = os.path.join(work, "flood.json")
        state = os.path.join(work, "state", "flood.sqlite")
        cap = 16 * 1024 * 1024
        host_config(config, state, flood, ["flood"], extra_handler={"maxOutputBytes": cap})
        fresh_state(state)
        start = time.perf_counter()
        process = subprocess.Popen([host, "exec", "flood", "--config", config, "--json"], stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
        rss = PeakRSS(process.pid)
        out, _ = process.communicate()
        rss.thread.join(timeout=1)
        record = json.loads(out)
        killed_after = record["durationMs"] / 1000.0
        capped = record.get("failureReason") == "NON_RETRYABLE_ERROR" and "cap" in (record.get("error") or "").lower() or "maxOutputBytes" in (record.get("error") or "")
        row("agent writing 100 MiB to stdout, cap 16 MiB: spawn to kill", killed_after, None, None, "<= 2 s after the cap", killed_after <= 2 and capped)
        limit_mb = cap / 1048576 + 20
        row("same: host peak RSS", rss.peak_kb / 1024.0, None, None, "<= %d MB (cap + 20 MB)" % limit_mb, rss.peak_kb / 1024.0 <= limit_mb, unit="MB")

        # 4. The store alone, in process.
        store_tasks = 200 if quick else 10000
        figures = []
        for _ in range(repeat):
            path = os.path.join(work, "state", "store-%d.sqlite" % len(figures))
            out = subprocess.run([store_bench, "store", str(store_tasks), path], check=True, capture_output=True, text=True).stdout
            figures.append(json.loads(out))
        per_second = statistics.median(f["claimCompletePerSecond"] for f in figures)
        enqueue = statistics.median(f["enqueuePerSecond"] for f in figures)
        row("store only: claim + complete, %d tasks in process" % store_tasks, per_second, None, None, "report", None, unit="tasks/s")
        row("store only: enqueue %d children in one completion" % store_tasks, enqueue, None, None, "report", None, unit="tasks/s")
    finally:
        shutil.rmtree(work, ignore_errors=True)

    result = {"quick": quick, "repetitions": repeat, "machine": machine(), "build": options.build, "date": time.strftime("%Y-%m-%d"), "rows": rows}
    os.makedirs(os.path.dirname(os.path.abspath(options.out)), exist_ok=True)
    with open(options.out, "w") as handle:
        json.dump(result, handle, indent=2)
        handle.write("\n")

    def show(value, unit):
        if value is None:
            return "-"
        return "%.0f %s" % (value, unit) if unit == "tasks/s" else "%.2f %s" % (value, unit)

    print("machine: %(cores)s cores, %(cpu)s, Linux %(kernel)s" % result["machine"])
    print("build: %s" % result["build"])
    print("%s; median of %d run(s)%s" % (result["date"], repeat, " (--quick: smoke run, targets not judged)" if quick else ""))
    header = ("workload", "ConnectorHost", "reference", "ratio", "target", "met")
    lines = [header] + [
        (r["workload"], show(r["connectorHost"], r["unit"]), show(r["reference"], "s"), "-" if r["ratio"] is None else "%.2fx" % r["ratio"],
         r["target"], "-" if r["met"] is None or quick else ("yes" if r["met"] else "NO"))
        for r in rows
    ]
    widths = [max(len(line[i]) for line in lines) for i in range(len(header))]
    for line in lines:
        print("  ".join(cell.ljust(width) for cell, width in zip(line, widths)).rstrip())
    with_cpu = [r for r in rows if "cpuSeconds" in r]
    if with_cpu:
        print("CPU seconds, median (own + descendants' = total; total / wall = cores kept busy):")
        def part(c, label):
            total = c["own"] + c["descendants"]
            return "%s %.2f + %.2f = %.2f (%.2f cores)" % (label, c["own"], c["descendants"], total, total / c["wall"])
        for r in with_cpu:
            print("  %s: %s; %s" % (r["workload"], part(r["cpuSeconds"]["connectorHost"], "host"), part(r["cpuSeconds"]["reference"], "reference")))
    print("written to %s" % options.out)


if __name__ == "__main__":
    main()
