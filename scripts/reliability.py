#!/usr/bin/env python3
"""ConnectorHost's reliability and security suite: crash the host, race it, feed it bad input, look
for leaked secrets. Every case drives the real `connector-host` binary against real files, real agent
processes and a real SQLite state, and checks what the project promises: nothing lost, at-least-once,
no orphans, clear errors, secrets stay secret.

    python3 scripts/reliability.py --bin .build/release [--quick] [--seed N] [--only crash,races,...]

scripts/reliability.sh builds the binary and calls this. Prints one table (case, trials, failures,
figure) and exits 1 when any trial failed; --json FILE also writes the table as JSON.
"""
import argparse
import hashlib
import json
import os
import random
import resource
import shutil
import signal
import sqlite3
import subprocess
import sys
import tempfile
import time

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
AGENTS = os.path.join(REPO, "scripts", "reliability", "agents")
MARKER = b"CONNECTOR_HOST_TASK_EXECUTION_ID="


class Case:
    """One row of the table: how many checks ran, which failed, and the figure worth reporting."""

    def __init__(self, name):
        self.name, self.trials, self.failures, self.figure = name, 0, [], ""

    def check(self, ok, what):
        self.trials += 1
        if not ok:
            self.failures.append(what)
            print(f"  FAIL [{self.name}] {what}", file=sys.stderr)
        return ok


class Host:
    """Runs the binary with a config, capturing output in files (never pipes a child could fill)."""

    def __init__(self, binary, workspace):
        self.binary, self.workspace = binary, workspace
        self.env = {k: v for k, v in os.environ.items() if not k.startswith("CONNECTOR_HOST_")}

    def run(self, *args, timeout=300, env=None, config=None, preexec=None):
        command = [self.binary, *args]
        if config:
            command += ["--config", config]
        result = subprocess.run(command, cwd=self.workspace, env={**self.env, **(env or {})}, capture_output=True,
                                timeout=timeout, preexec_fn=preexec)
        return result.returncode, result.stdout.decode(errors="replace"), result.stderr.decode(errors="replace")

    def start(self, *args, config=None, log="host.log"):
        command = [self.binary, *args] + (["--config", config] if config else [])
        out = open(os.path.join(self.workspace, log), "ab")
        return subprocess.Popen(command, cwd=self.workspace, env=self.env, stdout=out, stderr=out)


# ---------------------------------------------------------------------------------------------
# Helpers


def write_config(workspace, config, name="plugins.json"):
    path = os.path.join(workspace, name)
    with open(path, "w") as handle:
        json.dump(config, handle, indent=2)
    return path


def agent(name):
    return os.path.join(AGENTS, name)


def agents_alive(workspace):
    """Pids of agent processes of this workspace still alive: the ones whose environment carries the
    host's execution marker and mentions the workspace (its payload path is inside it)."""
    found = []
    needle = workspace.encode()
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/environ", "rb") as handle:
                environ = handle.read()
        except OSError:
            continue
        if MARKER in environ and needle in environ:
            found.append(int(entry))
    return found


def kill_leftovers(workspace):
    for pid in agents_alive(workspace):
        try:
            os.kill(pid, signal.SIGKILL)
        except OSError:
            pass


def query(state, sql, args=()):
    """Reads the state while no host runs (a reader in WAL mode could otherwise see either side)."""
    connection = sqlite3.connect(state, timeout=30)
    try:
        return connection.execute(sql, args).fetchall()
    finally:
        connection.close()


def integrity(state):
    return query(state, "PRAGMA integrity_check")[0][0]


def file_digests(state):
    digests = {}
    for suffix in ("", "-wal", "-shm"):
        path = state + suffix
        if os.path.exists(path):
            with open(path, "rb") as handle:
                digests[suffix or "db"] = hashlib.sha256(handle.read()).hexdigest()
    return digests


def payload_entries(workspace, state_dir="state"):
    """Payload files left anywhere a host of this run may have put them: beside the state, or in
    memory under the run's XDG_RUNTIME_DIR (README, "Payload files"), which `main` makes for this
    run alone, so anything there is this run's."""
    roots = [os.path.join(workspace, state_dir, "payloads")]
    runtime = os.environ.get("XDG_RUNTIME_DIR")
    if runtime and os.path.isdir(os.path.join(runtime, "connector-host")):
        roots += [os.path.join(runtime, "connector-host", name) for name in os.listdir(os.path.join(runtime, "connector-host"))]
    return [entry for root in roots if os.path.isdir(root) for entry in os.listdir(root)]


def wait_for(predicate, timeout, step=0.02):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(step)
    return predicate()


def fanout_config(workspace, items, work, concurrency=4, state="state/state.sqlite", extra=None):
    config = {
        "version": 1, "state": state, "concurrency": concurrency, "shutdownGraceSeconds": 5,
        "handlers": {"fanout": {"command": [agent("fanout.sh")], "taskTypes": ["sync"], "killGraceSeconds": 2}},
        "connections": {"bulk": {"handler": "fanout", "fields": {"items": items, "work": work, "out": os.path.join(workspace, "items.txt")},
                                 "tasks": [{"type": "sync", "every": "1d"}]}},
    }
    config.update(extra or {})
    return write_config(workspace, config)


def processed_items(workspace):
    path = os.path.join(workspace, "items.txt")
    if not os.path.exists(path):
        return [], 0
    items, roots = [], 0
    with open(path) as handle:
        for line in handle:
            first = line.split()[0]
            if first == "root":
                roots += 1
            else:
                items.append(int(first))
    return items, roots


def finish_scan(host, config, case, runs=3):
    """Runs passes until the scan is done; a pass after an interruption may need a second one only
    if something is left queued."""
    code = None
    for _ in range(runs):
        code, out, err = host.run("run", "--max-wait", "600", config=config, timeout=900)
        if code in (0, 1) and "0 task(s) left queued" in out:
            break
    return code


def check_scan_complete(case, workspace, state, items):
    processed, _ = processed_items(workspace)
    seen = set(processed)
    case.check(seen == set(range(items)), f"items processed: {len(seen)} of {items} distinct")
    scans = query(state, "SELECT id, status, checkpoint_committed FROM scans")
    case.check(len(scans) == 1 and scans[0][1] == "success" and scans[0][2] == 1, f"one successful scan with its checkpoint committed: {scans}")
    # An execution the host stopped while shutting down is recorded (as interrupted) and its task
    # re-queued; anything else that failed is a task the host lost or broke.
    failed = query(state, "SELECT COUNT(*) FROM executions WHERE status = 'failure' AND COALESCE(error, '') NOT LIKE 'interrupted:%'")[0][0]
    case.check(failed == 0, f"{failed} failed execution(s) other than interruptions")
    unfinished = query(state, "SELECT COUNT(*) FROM tasks WHERE state <> 'succeeded'")[0][0]
    case.check(unfinished == 0, f"{unfinished} task(s) not succeeded")
    case.check(integrity(state) == "ok", "PRAGMA integrity_check")
    case.check(agents_alive(workspace) == [], f"agents left alive: {agents_alive(workspace)}")
    case.check(payload_entries(workspace) == [], f"payload directories left: {payload_entries(workspace)}")
    return len(processed) - len(seen)


# ---------------------------------------------------------------------------------------------
# 1. Crash: SIGKILL the host at random moments of a 1,000-task fan-out


def case_crash(binary, base, rng, quick):
    case = Case("crash (SIGKILL mid-scan)")
    workspace = tempfile.mkdtemp(prefix="crash-", dir=base)
    items, kills = 1000, 5 if quick else 20
    config = fanout_config(workspace, items, work=0.03)
    state = os.path.join(workspace, "state", "state.sqlite")
    host = Host(binary, workspace)
    mid_scan = 0
    for k in range(kills):
        process = host.start("run", "--max-wait", "600", config=config)
        delay = rng.uniform(0.05, 0.6)
        try:
            process.wait(timeout=delay)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        if not os.path.exists(state):
            continue
        status = query(state, "SELECT status FROM scans")
        done = bool(status) and status[0][0] != "running"
        mid_scan += 0 if done else 1
        committed = query(state, "SELECT COUNT(*) FROM checkpoints")[0][0]
        case.check(done or committed == 0, f"kill {k + 1}: a checkpoint was committed before the scan ended")
        case.check(integrity(state) == "ok", f"kill {k + 1}: PRAGMA integrity_check")
    code = finish_scan(host, config, case)
    case.check(code == 0, f"the completing run exited {code}")
    duplicates = check_scan_complete(case, workspace, state, items)
    scan_id = query(state, "SELECT id FROM scans")[0][0]
    checkpoint = query(state, "SELECT metadata, scan_id, updated_at FROM checkpoints")
    last_end = query(state, "SELECT MAX(started_at + duration_ms / 1000.0) FROM executions WHERE scan_id = ?", (scan_id,))[0][0]
    case.check(len(checkpoint) == 1 and checkpoint[0][1] == scan_id and json.loads(checkpoint[0][0]).get("scan") == scan_id,
               f"the checkpoint is the scan's own: {checkpoint}")
    case.check(bool(checkpoint) and checkpoint[0][2] >= last_end - 0.01, "the checkpoint was committed after the last task ended")
    commits = query(state, "SELECT COUNT(*) FROM events WHERE kind = 'CHECKPOINT_COMMITTED'")[0][0]
    case.check(commits == 1, f"checkpoint committed {commits} times")
    recovered = query(state, "SELECT COUNT(*) FROM events WHERE kind = 'TASK_RECOVERED'")[0][0]
    case.figure = f"{kills} kills ({mid_scan} mid-scan), {recovered} tasks recovered, {duplicates} duplicates ({duplicates / max(kills, 1):.1f} per crash)"
    return case


# ---------------------------------------------------------------------------------------------
# 2. Races: runs started together on one state; trigger and exec during a run


def race_config(workspace, work, connections=("alpha", "beta", "gamma"), local_agent=False):
    out = os.path.join(workspace, "counts.txt")
    command = agent("count.sh")
    if local_agent:
        # A copy inside the workspace, so another user (see case_faults) can reach it too.
        command = shutil.copy(command, os.path.join(workspace, "count.sh"))
    return write_config(workspace, {
        "version": 1, "state": "state/state.sqlite", "concurrency": 4,
        "handlers": {"count": {"command": [command], "taskTypes": ["sync"]}},
        "connections": {c: {"handler": "count", "fields": {"out": out, "work": work[c] if isinstance(work, dict) else work},
                            "tasks": [{"type": "sync", "every": "1d"}]} for c in connections},
    }), out


def counted(out, kind="done"):
    counts = {}
    if os.path.exists(out):
        with open(out) as handle:
            for line in handle:
                parts = line.split()
                if parts[0] == kind:
                    counts[(parts[1], parts[2])] = counts.get((parts[1], parts[2]), 0) + 1
    return counts


def start_together(host, count, args, config):
    return [host.start(*args, config=config, log=f"race-{i}.log") for i in range(count)]


def case_races(binary, base, rng, quick):
    case = Case("races (10 runs, trigger, exec)")
    repetitions = 2 if quick else 5
    exits = {}
    for r in range(repetitions):
        # Without --wait-lock: one pass runs the due tasks, the others exit 75 (or find nothing due).
        workspace = tempfile.mkdtemp(prefix="race-", dir=base)
        config, out = race_config(workspace, work=0.3)
        processes = start_together(Host(binary, workspace), 10, ["run"], config)
        codes = [p.wait(timeout=120) for p in processes]
        for c in codes:
            exits[c] = exits.get(c, 0) + 1
        case.check(set(codes) <= {0, 75} and codes.count(0) >= 1, f"exit codes of 10 runs: {sorted(codes)}")
        logs = "".join(open(os.path.join(workspace, f"race-{i}.log")).read() for i, c in enumerate(codes) if c == 75)
        case.check(codes.count(75) == 0 or "pid" in logs, "a run refused with 75 names the lock holder's pid")
        case.check(counted(out) == {(c, "schedule"): 1 for c in ("alpha", "beta", "gamma")}, f"each due task once: {counted(out)}")
        # With --wait-lock: every run waits its turn and exits 0; the later ones find nothing due.
        workspace = tempfile.mkdtemp(prefix="race-wait-", dir=base)
        config, out = race_config(workspace, work=0.2)
        processes = start_together(Host(binary, workspace), 10, ["run", "--wait-lock", "60"], config)
        codes = [p.wait(timeout=180) for p in processes]
        case.check(codes == [0] * 10, f"exit codes of 10 runs with --wait-lock: {codes}")
        case.check(counted(out) == {(c, "schedule"): 1 for c in ("alpha", "beta", "gamma")}, f"each due task once with --wait-lock: {counted(out)}")
    # trigger and exec while a run is busy with a slow connection.
    workspace = tempfile.mkdtemp(prefix="race-trigger-", dir=base)
    config, out = race_config(workspace, work={"slow": 2, "fast": 0}, connections=("slow", "fast"))
    host = Host(binary, workspace)
    runner = host.start("run", config=config)
    started = wait_for(lambda: counted(out, "start").get(("slow", "schedule")) and counted(out).get(("fast", "schedule")), 30)
    case.check(started, "the run started both connections")
    code, _, err = host.run("trigger", "slow", config=config)
    case.check(code == 75 and "still running" in err, f"trigger of a running scan exits 75: {code} {err.strip()}")
    code, _, err = host.run("exec", "slow", config=config)
    case.check(code == 75, f"exec of a running scan exits 75: {code} {err.strip()}")
    code, _, err = host.run("trigger", "fast", config=config)
    case.check(code == 0, f"trigger of an idle connection during a run: {code} {err.strip()}")
    code, _, err = host.run("exec", "fast", config=config)
    case.check(code in (0, 75), f"exec of an idle connection during a run: {code} {err.strip()}")
    exec_ran = code == 0
    case.check(runner.wait(timeout=120) == 0, "the run exits 0")
    code, _, _ = host.run("run", config=config)
    case.check(code == 0, f"the next run exits {code}")
    counts = counted(out)
    expected_fast = {("fast", "schedule"): 1, ("fast", "manual"): 1 + (1 if exec_ran else 0)}
    case.check({k: v for k, v in counts.items() if k[0] == "fast"} == expected_fast, f"fast ran once per schedule, trigger and exec: {counts}")
    case.check(counts.get(("slow", "schedule")) == 1 and ("slow", "manual") not in counts, f"slow ran once: {counts}")
    case.check(agents_alive(workspace) == [], "no agent left")
    case.figure = "10 runs at once: " + ", ".join(f"exit {c} ×{n}" for c, n in sorted(exits.items())) + f" over {repetitions} rounds"
    return case


# ---------------------------------------------------------------------------------------------
# 3. Malformed configuration corpus


def corpus(workspace):
    """(name, text or producer, substrings the message must contain besides the file name)."""
    ok = agent("count.sh")
    not_executable = os.path.join(workspace, "not-executable.sh")
    with open(not_executable, "w") as handle:
        handle.write("#!/bin/sh\n")
    os.chmod(not_executable, 0o644)

    def good(**changes):
        config = {"version": 1, "state": "state/state.sqlite",
                  "handlers": {"h": {"command": [ok], "taskTypes": ["sync"]}},
                  "connections": {"c": {"handler": "h", "fields": {"out": "counts.txt"}, "tasks": [{"type": "sync", "every": "1d"}]}}}
        for path, value in changes.items():
            target = config
            keys = path.split("__")
            for key in keys[:-1]:
                target = target[int(key)] if isinstance(target, list) else target[key]
            last = keys[-1]
            if value is DELETE:
                del target[last]
            elif isinstance(target, list):
                target[int(last)] = value
            else:
                target[last] = value
        return json.dumps(config, indent=2)

    def renamed(section, old, new):
        config = json.loads(good())
        config[section][new] = config[section].pop(old)
        if section == "handlers":
            config["connections"]["c"]["handler"] = new
        return json.dumps(config, indent=2)

    base = good()
    entries = [
        ("syntax-trailing-comma", '{"version": 1,\n  "handlers": {},\n}', ["line 3", "column"]),
        ("syntax-unterminated-string", '{"version": 1, "state": "abc\n}', ["line", "column"]),
        ("syntax-truncated", base[: len(base) // 2], ["line", "column"]),
        ("syntax-bare-key", '{version: 1}', ["line 1", "column"]),
        ("syntax-empty-file", "", ["empty"]),
        ("syntax-two-documents", base + "\n{}", ["line", "column"]),
        ("syntax-invalid-utf8", b'{"version": 1, "state": "\xff\xfe"}', ["UTF-8"]),
        ("top-level-array", "[]", ["object"]),
        ("version-string", good(version="1"), ["version"]),
        ("version-2", good(version=2), ["version"]),
        ("handlers-array", good(handlers=[]), ["handlers"]),
        ("connections-string", good(connections="c"), ["connections"]),
        ("unknown-top-level-key", good(concurency=2), ["concurency"]),
        ("unknown-handler-key", good(handlers__h__comand=["x"]), ["handlers.h", "comand"]),
        ("unknown-connection-key", good(connections__c__feilds={}), ["connections.c", "feilds"]),
        ("missing-handlers", good(handlers=DELETE), ["handlers"]),
        ("missing-command", good(handlers__h__command=DELETE), ["handlers.h.command"]),
        ("duplicate-connection-id", base.replace('"connections": {', '"connections": {\n    "c": {"handler": "h"},', 1), ["connections:", "duplicate key \"c\""]),
        ("duplicate-handler-id", base.replace('"handlers": {', '"handlers": {\n    "h": {"command": ["x"], "taskTypes": ["t"]},', 1), ["handlers:", "duplicate key \"h\""]),
        ("unknown-handler", good(connections__c__handler="nope"), ["connections.c.handler", "nope"]),
        ("cron-out-of-range", good(connections__c__tasks=[{"type": "sync", "cron": "61 * * * *"}]), ["connections.c.tasks[0].cron"]),
        ("cron-three-fields", good(connections__c__tasks=[{"type": "sync", "cron": "* * *"}]), ["connections.c.tasks[0].cron"]),
        ("bad-timezone", good(connections__c__tasks=[{"type": "sync", "cron": "@daily", "timezone": "Mars/Olympus"}]), ["connections.c.tasks[0].timezone"]),
        ("duration-garbage", good(connections__c__tasks=[{"type": "sync", "every": "1x"}]), ["connections.c.tasks[0].every"]),
        ("duration-negative", good(connections__c__tasks=[{"type": "sync", "every": "-5m"}]), ["connections.c.tasks[0].every"]),
        ("duration-zero", good(connections__c__tasks=[{"type": "sync", "every": "0s"}]), ["connections.c.tasks[0].every"]),
        ("every-and-cron", good(connections__c__tasks=[{"type": "sync", "every": "1h", "cron": "@daily"}]), ["connections.c.tasks[0]"]),
        ("unknown-task-type", good(connections__c__tasks=[{"type": "nope", "every": "1h"}]), ["connections.c.tasks[0].type"]),
        ("timeout-negative", good(handlers__h__timeoutSeconds=-1), ["handlers.h.timeoutSeconds"]),
        ("timeout-string", good(handlers__h__timeoutSeconds="10"), ["handlers.h.timeoutSeconds"]),
        ("concurrency-zero", good(concurrency=0), ["concurrency"]),
        ("connection-id-slash", renamed("connections", "c", "a/b"), ["connections.a/b"]),
        ("connection-id-dotdot", renamed("connections", "c", "../escape"), ["connections.../escape"]),
        ("handler-id-dotdot", renamed("handlers", "h", "../h"), ["handlers.../h"]),
        ("command-empty-array", good(handlers__h__command=[]), ["handlers.h.command"]),
        ("command-empty-string", good(handlers__h__command=[""]), ["handlers.h.command"]),
        ("command-not-executable", good(handlers__h__command=[not_executable]), ["handlers.h.command", "not-executable.sh"]),
        ("command-missing", good(handlers__h__command=["./no-such-agent"]), ["handlers.h.command", "no-such-agent"]),
        ("secret-neither-env-nor-file", good(connections__c__secrets={"TOKEN": {}}), ["connections.c.secrets.TOKEN"]),
        ("secret-both-env-and-file", good(connections__c__secrets={"TOKEN": {"env": "A", "file": "b"}}), ["connections.c.secrets.TOKEN"]),
        ("fields-array", good(connections__c__fields=[1]), ["connections.c.fields"]),
        ("exit-code-unknown-reason", good(handlers__h__exitCodes={"3": "MAYBE"}), ["handlers.h.exitCodes"]),
        ("durability-unknown", good(durability="fast"), ["durability"]),
        ("retention-too-short", good(retention={"history": "5m"}), ["retention.history"]),
        ("huge-50MB", None, ["MiB"]),
        ("is-a-directory", None, ["directory"]),
    ]
    return entries


DELETE = object()


def case_config_corpus(binary, base, rng, quick):
    case = Case("malformed config corpus")
    workspace = tempfile.mkdtemp(prefix="corpus-", dir=base)
    host = Host(binary, workspace)
    good, out = race_config(workspace, work=0, connections=("c",))
    code, _, err = host.run("run", config=good)
    case.check(code == 0, f"the good config runs: {code} {err[-300:]}")
    state = os.path.join(workspace, "state", "state.sqlite")
    entries = corpus(workspace)
    for name, text, expected in entries:
        before = file_digests(state)
        path = os.path.join(workspace, name + ".json")
        if name == "huge-50MB":
            with open(path, "w") as handle:
                handle.write('{"version": 1, "description": "')
                chunk = "x" * (1 << 20)
                for _ in range(50):
                    handle.write(chunk)
                handle.write('"}')
        elif name == "is-a-directory":
            os.mkdir(path)
        else:
            with open(path, "wb") as handle:
                handle.write(text if isinstance(text, bytes) else text.encode())
        for command in ("run", "validate"):
            code, _, err = host.run(command, config=path, timeout=60)
            message = err.strip()
            missing = [s for s in [os.path.basename(path)] + expected if s.lower() not in message.lower()]
            case.check(code == 78 and not missing and len(message.splitlines()) >= 1,
                       f"{name} ({command}): exit {code}, missing {missing} in: {message[:300]}")
        case.check(file_digests(state) == before, f"{name}: the state changed")
    case.check(agents_alive(workspace) == [], "no agent ran")
    case.figure = f"{len(entries)} files × run and validate: exit 78, file and JSON path named, state byte-identical"
    return case


# ---------------------------------------------------------------------------------------------
# 4. Secrets


def case_secrets(binary, base, rng, quick):
    case = Case("secrets never stored")
    workspace = tempfile.mkdtemp(prefix="secrets-", dir=base)
    token = "envsecret-" + "".join(rng.choice("abcdefghjkmnpqrstuvwxyz23456789") for _ in range(20))
    file_token = "filesecret-" + "".join(rng.choice("abcdefghjkmnpqrstuvwxyz23456789") for _ in range(20))
    secret_file = os.path.join(workspace, "token.txt")
    with open(secret_file, "w") as handle:
        handle.write(file_token + "\n")
    copies = os.path.join(workspace, "payload-copies")
    os.mkdir(copies)
    secrets = {"TOKEN": {"env": "LEAKY_TOKEN"}, "FILE_TOKEN": {"file": secret_file}}
    config = write_config(workspace, {
        "version": 1, "state": "state/state.sqlite",
        "metrics": {"textfile": "metrics/host.prom"},
        "notify": {"command": [os.path.join(REPO, "agents", "notify", "file-notifier.sh")], "env": {"NOTIFY_FILE": os.path.join(workspace, "notify.jsonl")}},
        "handlers": {"leak": {"command": [agent("leak.sh")], "taskTypes": ["sync"], "retry": {"maxAttempts": 1}}},
        "connections": {
            "leaks-ok": {"handler": "leak", "fields": {"copies": copies}, "secrets": secrets, "tasks": [{"type": "sync", "every": "1d"}]},
            "leaks-failing": {"handler": "leak", "fields": {"copies": copies, "fail": 1}, "secrets": secrets, "tasks": [{"type": "sync", "every": "1d"}]},
            "leaks-verbatim": {"handler": "leak", "fields": {"copies": copies, "verbatim": 1}, "secrets": secrets, "tasks": [{"type": "sync", "every": "1d"}]},
        },
    })
    host = Host(binary, workspace)
    host.env["LEAKY_TOKEN"] = token
    outputs = []
    daemon = host.start("daemon", "--log-level", "debug", config=config, log="daemon.log")
    state = os.path.join(workspace, "state", "state.sqlite")

    def both_done():
        try:
            return query(state, "SELECT COUNT(*) FROM executions")[0][0] >= 3
        except sqlite3.Error:
            return False

    case.check(wait_for(both_done, 60), "the three leaking executions recorded")
    time.sleep(0.5)
    # While the daemon still holds the database open, its WAL holds the latest pages.
    live = {suffix: open(state + suffix, "rb").read() for suffix in ("", "-wal", "-shm") if os.path.exists(state + suffix)}
    daemon.send_signal(signal.SIGTERM)
    case.check(daemon.wait(timeout=60) == 0, "the daemon stops on SIGTERM")
    for args in (["run"], ["runs", "--json"], ["runs"], ["status", "--json"], ["alerts", "--all", "--json"], ["scans", "--json"]):
        code, out, err = host.run(*args, config=config)
        outputs.append((" ".join(args), out + err))
    for row in query(state, "SELECT id FROM executions"):
        code, out, err = host.run("runs", "show", row[0], "--json", config=config)
        outputs.append(("runs show", out + err))
    places = {f"state file{'' if s == '' else ' ' + s} (daemon running)": data for s, data in live.items()}
    for suffix in ("", "-wal", "-shm"):
        if os.path.exists(state + suffix):
            places[f"state file{suffix} (after)"] = open(state + suffix, "rb").read()
    places["daemon log"] = open(os.path.join(workspace, "daemon.log"), "rb").read()
    for name, text in outputs:
        places[f"`{name}` output"] = text.encode()
    for name in os.listdir(copies):
        places[f"payload file {name}"] = open(os.path.join(copies, name), "rb").read()
    metrics = os.path.join(workspace, "metrics", "host.prom")
    case.check(os.path.exists(metrics), "metrics file written")
    places["metrics file"] = open(metrics, "rb").read() if os.path.exists(metrics) else b""
    notified = os.path.join(workspace, "notify.jsonl")
    case.check(os.path.exists(notified) and b"scan_failed" in open(notified, "rb").read(), "the failing scan reached the notifier")
    places["notifier input"] = open(notified, "rb").read() if os.path.exists(notified) else b""
    case.check(len(os.listdir(copies)) >= 3, "the agent saw its payload")
    verbatim = query(state, "SELECT status, failure_reason, error FROM executions WHERE connection_id = 'leaks-verbatim'")
    case.check(len(verbatim) == 1 and verbatim[0][:2] == ("failure", "NON_RETRYABLE_ERROR") and "checkpoint" in (verbatim[0][2] or ""),
               f"a secret in a checkpoint or child is refused: {verbatim}")
    kept = query(state, "SELECT (SELECT COUNT(*) FROM checkpoints WHERE connection_id = 'leaks-verbatim'), (SELECT COUNT(*) FROM tasks WHERE connection_id = 'leaks-verbatim' AND parent_task_id IS NOT NULL)")[0]
    case.check(kept == (0, 0), f"neither its checkpoint nor its child was kept: {kept}")
    case.check(payload_entries(workspace) == [], "payload directory emptied")
    evidence = open(os.path.join(workspace, "daemon.log"), "rb").read()
    case.check(b"***" in evidence, "the redaction marker shows in the log (the agent did print the secret)")
    occurrences = 0
    for name, data in places.items():
        for value in (token, file_token):
            n = data.count(value.encode())
            occurrences += n
            case.check(n == 0, f"{value[:10]}… occurs {n} time(s) in {name}")
    case.figure = f"2 secrets (env, file) printed on stderr, log, progress, stats, result, error, checkpoint, child: {occurrences} occurrences in {len(places)} places"
    return case


# ---------------------------------------------------------------------------------------------
# 5. Payload files


def probe_config(workspace, mode, release=None):
    return write_config(workspace, {
        "version": 1, "state": "state/state.sqlite",
        "handlers": {"probe": {"command": [agent("payload-probe.sh")], "taskTypes": ["sync"], "retry": {"maxAttempts": 1}}},
        "connections": {"probe": {"handler": "probe", "fields": {"probe": os.path.join(workspace, "probe.txt"), "mode": mode,
                                                                  "release": release or os.path.join(workspace, "release")},
                                  "tasks": [{"type": "sync", "every": "1d"}]}},
    })


def probes(workspace):
    path = os.path.join(workspace, "probe.txt")
    return [line.split() for line in open(path)] if os.path.exists(path) else []


def case_payloads(binary, base, rng, quick):
    case = Case("payload files")
    for mode in ("succeed", "crash"):
        workspace = tempfile.mkdtemp(prefix=f"payload-{mode}-", dir=base)
        host = Host(binary, workspace)
        code, _, err = host.run("run", config=probe_config(workspace, mode))
        case.check(code == (0 if mode == "succeed" else 1), f"{mode}: run exited {code}")
        seen = probes(workspace)
        case.check(len(seen) == 1 and seen[0][1:] == ["600", "700", "700"], f"{mode}: payload modes (file, dir, root) {seen}")
        case.check(bool(seen) and not os.path.exists(seen[0][0]), f"{mode}: payload file removed")
        case.check(payload_entries(workspace) == [], f"{mode}: payload directory empty")
        state_dir_mode = oct(os.stat(os.path.join(workspace, "state")).st_mode & 0o777)
        case.check(state_dir_mode == "0o700", f"{mode}: state directory mode {state_dir_mode}")
    # The host is killed while its agent runs: the payload stays until the next start removes it.
    workspace = tempfile.mkdtemp(prefix="payload-killed-", dir=base)
    host = Host(binary, workspace)
    config = probe_config(workspace, "hang")
    process = host.start("run", config=config)
    case.check(wait_for(lambda: probes(workspace), 30), "killed: the agent started")
    process.kill()
    process.wait()
    left = probes(workspace)[0][0] if probes(workspace) else ""
    case.check(os.path.exists(left), "killed: the payload outlives a killed host (precondition)")
    open(os.path.join(workspace, "release"), "w").close()
    code, _, err = host.run("run", config=config)
    case.check(code == 0, f"killed: the next run exited {code}: {err[-300:]}")
    case.check(not os.path.exists(left), "killed: the next start removed the leftover payload")
    case.check(payload_entries(workspace) == [], "killed: payload directory empty")
    case.check(agents_alive(workspace) == [], "killed: the orphaned agent was stopped")
    case.figure = "0600 file in 0700 directories; removed after success, crash and host kill"
    return case


# ---------------------------------------------------------------------------------------------
# 6. Resource faults


def can_mount():
    if os.geteuid() != 0 or os.environ.get("RELIABILITY_NO_MOUNT"):
        return False
    probe = tempfile.mkdtemp(prefix="mount-probe-")
    try:
        ok = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs", probe], capture_output=True).returncode == 0
        if ok:
            subprocess.run(["umount", probe])
        return ok
    finally:
        os.rmdir(probe)


def prepared_state(binary, base, prefix):
    """A workspace whose state holds one finished pass; a later pass has a due task to write."""
    workspace = tempfile.mkdtemp(prefix=prefix, dir=base)
    os.chmod(workspace, 0o755)
    config, _ = race_config(workspace, work=0, connections=("c",), local_agent=True)
    host = Host(binary, workspace)
    code, _, err = host.run("run", config=config)
    host.run("trigger", "c", config=config)
    return workspace, config, host, code


def case_faults(binary, base, rng, quick):
    case = Case("resource faults")
    mounts = can_mount()
    figures = []

    # a) The state directory is read-only.
    workspace, config, host, code = prepared_state(binary, base, "fault-ro-")
    case.check(code == 0, "read-only: setup run")
    state_dir = os.path.join(workspace, "state")
    state = os.path.join(state_dir, "state.sqlite")
    before = file_digests(state)
    preexec = None
    if mounts:
        subprocess.run(["mount", "--bind", state_dir, state_dir], check=True)
        subprocess.run(["mount", "-o", "remount,bind,ro", state_dir], check=True)
        how = "read-only bind mount"
    elif os.geteuid() != 0:
        os.chmod(state_dir, 0o500)
        how = "chmod 0500"
    else:
        # Root ignores file modes: run the host as nobody, owning a state it may read but whose
        # directory it may not write. The binary is copied where nobody can reach it.
        binary_copy = shutil.copy(binary, os.path.join(base, "connector-host-as-nobody"))
        os.chmod(binary_copy, 0o755)
        host = Host(binary_copy, workspace)
        for root, dirs, files in os.walk(state_dir):
            for name in [root] + [os.path.join(root, f) for f in dirs + files]:
                os.chown(name, 65534, 65534)
        os.chmod(state_dir, 0o500)

        def preexec():
            os.setgroups([])
            os.setgid(65534)
            os.setuid(65534)
        how = "chmod 0500, host run as nobody"
    try:
        code, _, err = host.run("run", config=config, preexec=preexec)
    finally:
        if mounts:
            subprocess.run(["umount", state_dir])
        os.chmod(state_dir, 0o700)
    case.check(code == 74 and "state" in err and ("permissions" in err or "writable" in err), f"read-only ({how}): exit {code}: {err.strip()[-400:]}")
    case.check(file_digests(state) == before, "read-only: state unchanged")
    figures.append(f"read-only ({how}) exit {code}")

    # b) The filesystem under the state is full.
    workspace, config, host, code = prepared_state(binary, base, "fault-full-")
    state_dir = os.path.join(workspace, "state")
    state = os.path.join(state_dir, "state.sqlite")
    if mounts:
        saved = tempfile.mkdtemp(prefix="saved-", dir=base)
        for name in os.listdir(state_dir):
            shutil.move(os.path.join(state_dir, name), saved)
        size = sum(os.path.getsize(os.path.join(saved, n)) for n in os.listdir(saved) if os.path.isfile(os.path.join(saved, n)))
        subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size + (1 << 20)},mode=0700", "tmpfs", state_dir], check=True)
        for name in os.listdir(saved):
            shutil.move(os.path.join(saved, name), state_dir)
        filler = os.path.join(state_dir, "filler")
        fd = os.open(filler, os.O_WRONLY | os.O_CREAT, 0o600)
        try:
            while os.write(fd, b"\0" * 4096) > 0:
                pass
        except OSError:
            pass
        finally:
            os.close(fd)
        how, limit = "full tmpfs", None
    else:
        # No filesystem of our own: a file-size limit below one WAL frame makes the first write fail
        # with EFBIG, as a full disk fails it with ENOSPC.
        how, limit = "file-size limit (RLIMIT_FSIZE)", 4096
    before = file_digests(state)
    def preexec():
        # Python ignores SIGXFSZ and children inherit that; a shell's `ulimit -f` would not, so
        # restore the default and let the host show it copes by itself.
        signal.signal(signal.SIGXFSZ, signal.SIG_DFL)
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))
    try:
        code, _, err = host.run("run", config=config, preexec=preexec if limit else None)
        after = file_digests(state)
        ok = integrity(state) == "ok" if mounts is False else None
    finally:
        if mounts:
            os.remove(os.path.join(state_dir, "filler"))
            ok = integrity(state) == "ok"
            for name in os.listdir(state_dir):
                shutil.move(os.path.join(state_dir, name), saved)
            subprocess.run(["umount", state_dir])
            for name in os.listdir(saved):
                shutil.move(os.path.join(saved, name), state_dir)
    case.check(code == 74 and "free space" in err, f"full ({how}): exit {code}: {err.strip()[-400:]}")
    case.check(after.get("db") == before.get("db"), f"full ({how}): the state file was not overwritten")
    case.check(ok, f"full ({how}): integrity after")
    figures.append(f"full ({how}) exit {code}")

    # c) A corrupt state file: a damaged header, then damaged pages.
    for damage in ("header", "pages"):
        workspace, config, host, code = prepared_state(binary, base, f"fault-corrupt-{damage}-")
        state = os.path.join(workspace, "state", "state.sqlite")
        with open(state, "r+b") as handle:
            if damage == "header":
                handle.write(b"definitely not SQLite!")
            else:
                size = os.path.getsize(state)
                handle.seek(4096)
                handle.write(bytes(rng.getrandbits(8) for _ in range(size - 4096)))
        before = file_digests(state)
        code, _, err = host.run("run", config=config)
        case.check(code in (70, 74) and "state" in err and "backup" in err, f"corrupt {damage}: exit {code}: {err.strip()[-400:]}")
        case.check(file_digests(state) == before, f"corrupt {damage}: the state file was left as it was")
        figures.append(f"corrupt {damage} exit {code}")
    case.figure = "; ".join(figures)
    return case


# ---------------------------------------------------------------------------------------------
# 7. Signals


def case_signals(binary, base, rng, quick):
    case = Case("signals (TERM, INT, HUP)")
    repetitions = 1 if quick else 3
    trials = interrupted = 0
    for mode in ("run", "daemon"):
        for name in ("SIGTERM", "SIGINT", "SIGHUP"):
            for r in range(repetitions):
                number = getattr(signal, name)
                workspace = tempfile.mkdtemp(prefix=f"signal-{mode}-{name}-", dir=base)
                # Every other trial has no grace, so running agents are stopped and re-queued rather
                # than drained: both shutdown paths are exercised.
                grace = 5 if trials % 2 == 0 else 0
                items = 40
                config = fanout_config(workspace, items, work=0.3, extra={"shutdownGraceSeconds": grace})
                host = Host(binary, workspace)
                process = host.start(mode, config=config)
                time.sleep(rng.uniform(0.2, 1.2))
                process.send_signal(number)
                trials += 1
                what = f"{mode} {name} #{r + 1}"
                if name == "SIGHUP":
                    # A reload: the work goes on. A daemon is then stopped with SIGTERM; a run ends by itself.
                    if mode == "daemon":
                        time.sleep(0.3)
                        case.check(process.poll() is None, f"{what}: the daemon survives SIGHUP")
                        process.send_signal(signal.SIGTERM)
                    try:
                        code = process.wait(timeout=120)
                    except subprocess.TimeoutExpired:
                        process.kill()
                        code = "timeout"
                    case.check(code == 0, f"{what}: exit {code}")
                else:
                    try:
                        code = process.wait(timeout=30)
                    except subprocess.TimeoutExpired:
                        process.kill()
                        code = "timeout"
                    case.check(code in (0, 1, 130, 143), f"{what}: exit {code}")
                case.check(agents_alive(workspace) == [], f"{what}: agents left after the host exited: {agents_alive(workspace)}")
                log = open(os.path.join(workspace, "host.log")).read()
                case.check(name in log, f"{what}: the log names the signal")
                state = os.path.join(workspace, "state", "state.sqlite")
                interrupted += query(state, "SELECT COALESCE(SUM(interruptions), 0) FROM tasks")[0][0]
                code = finish_scan(Host(binary, workspace), config, case)
                case.check(code == 0, f"{what}: the completing run exited {code}")
                check_scan_complete(case, workspace, state, items)
                kill_leftovers(workspace)
    case.figure = f"{trials} signals at random moments to run and daemon; {interrupted} running tasks stopped and re-queued; none lost, no orphan"
    return case


# ---------------------------------------------------------------------------------------------

CASES = {"crash": case_crash, "races": case_races, "config": case_config_corpus, "secrets": case_secrets,
         "payloads": case_payloads, "faults": case_faults, "signals": case_signals}


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--bin", required=True, help="the directory holding connector-host")
    parser.add_argument("--quick", action="store_true", help="fewer trials, for CI")
    parser.add_argument("--seed", type=int, default=20261124)
    parser.add_argument("--only", default=",".join(CASES), help="comma-separated cases: " + ",".join(CASES))
    parser.add_argument("--json", help="also write the table to this file")
    parser.add_argument("--keep", action="store_true", help="keep the work directories")
    args = parser.parse_args()
    binary = os.path.join(os.path.abspath(args.bin), "connector-host")
    base = tempfile.mkdtemp(prefix="connector-host-reliability-")
    os.chmod(base, 0o755)
    # Hosts put payload files in memory, under XDG_RUNTIME_DIR when it is on tmpfs: one of this
    # run's own, so that the checks for leftovers see every payload and only this run's.
    if os.path.isdir("/dev/shm"):
        os.environ["XDG_RUNTIME_DIR"] = tempfile.mkdtemp(prefix="connector-host-reliability-run-", dir="/dev/shm")
    rng = random.Random(args.seed)
    print(f"seed {args.seed}; {'quick' if args.quick else 'full'} form; binary {binary}; work in {base}", file=sys.stderr)
    rows = []
    started = time.monotonic()
    for name in args.only.split(","):
        began = time.monotonic()
        print(f"== {name}", file=sys.stderr)
        try:
            case = CASES[name](binary, base, rng, args.quick)
        except Exception as error:  # a case that cannot even run is a failure, not a crash of the suite
            case = Case(name)
            case.check(False, f"the case raised {type(error).__name__}: {error}")
        case.seconds = time.monotonic() - began
        rows.append(case)
    width = max(len(c.name) for c in rows)
    print(f"\n{'case'.ljust(width)}  trials  failures  seconds  figure")
    for c in rows:
        print(f"{c.name.ljust(width)}  {c.trials:6d}  {len(c.failures):8d}  {c.seconds:7.1f}  {c.figure}")
    total = sum(len(c.failures) for c in rows)
    print(f"\n{sum(c.trials for c in rows)} checks, {total} failed, {time.monotonic() - started:.0f} s (seed {args.seed})")
    if args.json:
        with open(args.json, "w") as handle:
            json.dump({"seed": args.seed, "quick": args.quick, "cases": [
                {"case": c.name, "trials": c.trials, "failures": len(c.failures), "seconds": round(c.seconds, 1), "figure": c.figure,
                 "failed": c.failures} for c in rows]}, handle, indent=2)
    if not args.keep and total == 0:
        shutil.rmtree(base, ignore_errors=True)
    if not args.keep and os.environ.get("XDG_RUNTIME_DIR", "").startswith("/dev/shm/connector-host-reliability-run-"):
        shutil.rmtree(os.environ["XDG_RUNTIME_DIR"], ignore_errors=True)
    sys.exit(1 if total else 0)


if __name__ == "__main__":
    main()
