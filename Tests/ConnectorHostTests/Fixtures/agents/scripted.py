#!/usr/bin/env python3
"""A test agent whose behaviour is scripted by the connection's fields.

fields:
  log        file to append one JSON line per execution to (key, attempt, start, end, ...)
  outcomes   {key: [outcome for attempt 1, attempt 2, ...]} (the last repeats); default "success".
             outcome: "success" | a failure reason | "exit:N" | "rate:SECONDS" | "hang"
  children   {key: [child keys]} emitted before the outcome (also on failure)
  checkpoint {key: value} emitted as the checkpoint before the outcome
  sleep      seconds to work before the outcome (default 0)
  records    records to report in stats (default 1)
  schema     a schema fingerprint to report in stats
  leak       name of an environment variable (a secret) to print on stdout, stderr and in the result
The root's key is "root"; a child's key is its taskMetadata.key.
"""
import fcntl, json, os, sys, time

payload = json.load(open(sys.argv[sys.argv.index("--payload") + 1]))
fields = payload["connectorFormFields"]
meta = payload.get("taskMetadata") or {}
key = "root" if payload["taskDescription"]["isRootTask"] else meta.get("key", "?")
attempt = payload["attempt"]
start = time.time()

def out(message):
    sys.stdout.write(json.dumps(message) + "\n")
    sys.stdout.flush()

for child in fields.get("children", {}).get(key, []):
    out({"type": "child", "key": child, "metadata": {"key": child}})
if key in fields.get("checkpoint", {}):
    out({"type": "checkpoint", "metadata": fields["checkpoint"][key]})
stats = {"type": "stats", "records": fields.get("records", 1)}
if "schema" in fields:
    stats["schema"] = fields["schema"]
out(stats)
leaked = os.environ.get(fields["leak"], "") if "leak" in fields else ""
if leaked:
    print("the secret is " + leaked, file=sys.stderr)
    out({"type": "log", "level": "info", "message": "logging the secret " + leaked})

plan = fields.get("outcomes", {}).get(key, ["success"])
outcome = plan[min(attempt, len(plan)) - 1]
time.sleep(float(fields.get("sleep", 0)))
end = time.time()

if "log" in fields:
    line = json.dumps({"key": key, "attempt": attempt, "start": start, "end": end, "outcome": outcome,
                       "connection": payload["connectionId"], "taskId": payload["taskId"], "scanId": payload["scanId"],
                       "trigger": payload["taskDescription"]["trigger"], "persistent": payload.get("persistentTaskMetadata"),
                       "metadata": meta, "pid": os.getpid()})
    with open(fields["log"], "a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        handle.write(line + "\n")

if outcome == "success":
    result = {"key": key}
    if leaked:
        result["token"] = leaked
    out({"type": "result", "status": "success", "result": result})
elif outcome == "hang":
    time.sleep(3600)
elif outcome.startswith("exit:"):
    sys.exit(int(outcome[5:]))
elif outcome.startswith("rate:"):
    out({"type": "result", "status": "failure", "failureReason": "RATE_LIMITED", "retryAfterSeconds": float(outcome[5:])})
else:
    out({"type": "result", "status": "failure", "failureReason": outcome, "message": "scripted " + outcome})
