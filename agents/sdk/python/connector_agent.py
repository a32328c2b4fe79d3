"""connector_agent: write a ConnectorHost agent in Python (standard library only).

Copy this file next to your agent, or put agents/sdk/python on PYTHONPATH. The whole contract is in
PROTOCOL.md; this module reads the payload, writes the messages, maps exceptions to failure reasons
and exit codes, and turns SIGTERM (the host's timeout or shutdown) into an exception you can clean
up after.

    from connector_agent import agent, AgentError

    @agent
    def run(payload, ctx):
        if payload.is_root:
            for shard in range(4):
                ctx.child(f"shard:{shard}", {"shard": shard})
            ctx.checkpoint({"cursor": 42})
        else:
            ctx.stats(records=10)
        return {"ok": True}          # stored as the task's result
"""
import json
import os
import signal
import sys
import threading
import traceback

__all__ = ["agent", "main", "Payload", "Context", "AgentError", "Stopped", "FAILURE_REASONS"]

FAILURE_REASONS = (
    "RETRYABLE_ERROR", "RATE_LIMITED", "UNAUTHORIZED", "AUTH_TOKEN_EXPIRED", "AUTH_TOKEN_REVOKED",
    "ENTITY_NOT_FOUND", "NON_RETRYABLE_ERROR", "RETRY_LIMIT_EXCEEDED",
)

# The exit code the host's default table maps to the same reason, so a lost result line still
# classifies sensibly (PROTOCOL.md, "Exit codes and the status mapping").
_EXIT_CODES = {
    "RETRYABLE_ERROR": 75, "RATE_LIMITED": 75,
    "UNAUTHORIZED": 77, "AUTH_TOKEN_EXPIRED": 77, "AUTH_TOKEN_REVOKED": 77,
    "ENTITY_NOT_FOUND": 78, "NON_RETRYABLE_ERROR": 78, "RETRY_LIMIT_EXCEEDED": 78,
}


class AgentError(Exception):
    """Raise to fail the task with a reason: AgentError("ENTITY_NOT_FOUND", "table t is gone")."""

    def __init__(self, reason, message, retry_after_seconds=None):
        if reason not in FAILURE_REASONS:
            raise ValueError("unknown failure reason %r (one of %s)" % (reason, ", ".join(FAILURE_REASONS)))
        super().__init__(message)
        self.reason = reason
        self.message = message
        self.retry_after_seconds = retry_after_seconds

    @classmethod
    def retryable(cls, message):
        return cls("RETRYABLE_ERROR", message)

    @classmethod
    def rate_limited(cls, message, retry_after_seconds=None):
        return cls("RATE_LIMITED", message, retry_after_seconds)

    @classmethod
    def unauthorized(cls, message):
        return cls("UNAUTHORIZED", message)

    @classmethod
    def not_found(cls, message):
        return cls("ENTITY_NOT_FOUND", message)

    @classmethod
    def non_retryable(cls, message):
        return cls("NON_RETRYABLE_ERROR", message)


class Stopped(BaseException):
    """Raised in the main thread when the host sends SIGTERM (or on SIGINT). A BaseException, so
    a broad `except Exception` in your code does not swallow it; use `finally` to clean up."""

    def __init__(self, signal_name):
        super().__init__("stopped by %s" % signal_name)
        self.signal_name = signal_name


class Payload:
    """The task, as the host wrote it. `raw` has every field of the payload file."""

    def __init__(self, raw):
        self.raw = raw
        description = raw.get("taskDescription") or {}
        self.task_id = raw.get("taskId")
        self.task_execution_id = raw.get("taskExecutionId")
        self.scan_id = raw.get("scanId")
        self.parent_task_id = raw.get("parentTaskId")
        self.connection_id = raw.get("connectionId")
        self.environment_id = raw.get("environmentId")
        self.app_id = raw.get("appId")
        self.fields = raw.get("connectorFormFields") or {}
        self.task_type = description.get("taskType", "")
        self.is_root = bool(description.get("isRootTask"))
        self.trigger = description.get("trigger")
        self.metadata = raw.get("taskMetadata")
        self.checkpoint = raw.get("persistentTaskMetadata")
        self.attempt = raw.get("attempt", 1)
        self.deadline = raw.get("deadline")

    @property
    def is_incremental(self):
        return self.task_type.endswith("_incremental")

    def field(self, name, default=None, required=False, kind=None):
        """A form field; `required` and `kind` (a type or tuple of types) fail the task
        NON_RETRYABLE_ERROR with a message naming the field, since the config is wrong."""
        if name not in self.fields or self.fields[name] is None:
            if required:
                raise AgentError.non_retryable('connection "%s" needs the field "%s"' % (self.connection_id, name))
            return default
        value = self.fields[name]
        if kind is not None and (not isinstance(value, kind) or (isinstance(value, bool) and bool not in _as_tuple(kind))):
            raise AgentError.non_retryable('connection "%s" field "%s" should be %s, not %r' % (
                self.connection_id, name, " or ".join(k.__name__ for k in _as_tuple(kind)), value))
        return value


def _as_tuple(kind):
    return kind if isinstance(kind, tuple) else (kind,)


class Context:
    """What the agent tells the host while it runs: one JSON line per call on stdout."""

    def __init__(self, stream=None):
        self._stream = stream or sys.stdout
        self._lock = threading.Lock()
        self.stopped = None  # the signal's name once the host asked us to stop

    def _send(self, message):
        line = json.dumps(message, sort_keys=True, separators=(",", ":")) + "\n"
        with self._lock:
            self._stream.write(line)
            self._stream.flush()

    def child(self, key, metadata=None, task_type=None):
        """Schedule a child task. Derive `key` from what it covers ("folder:a/b"), never from time."""
        message = {"type": "child", "key": key}
        if metadata is not None:
            message["metadata"] = metadata
        if task_type is not None:
            message["taskType"] = task_type
        self._send(message)

    def checkpoint(self, metadata):
        """Stage the next run's checkpoint; committed only with success (the last one wins)."""
        self._send({"type": "checkpoint", "metadata": metadata})

    def stats(self, records=None, bytes=None, schema=None):
        message = {"type": "stats"}
        if records is not None:
            message["records"] = int(records)
        if bytes is not None:
            message["bytes"] = int(bytes)
        if schema is not None:
            message["schema"] = str(schema)
        self._send(message)

    def progress(self, message, done=None, total=None):
        out = {"type": "progress", "message": message}
        if done is not None:
            out["done"] = int(done)
        if total is not None:
            out["total"] = int(total)
        self._send(out)

    def log(self, message, level="info"):
        self._send({"type": "log", "level": level, "message": str(message)})

    def result(self, status, result=None, reason=None, message=None, retry_after_seconds=None):
        out = {"type": "result", "status": status}
        if result is not None:
            out["result"] = result
        if reason is not None:
            out["failureReason"] = reason
        if message is not None:
            out["message"] = message
        if retry_after_seconds is not None:
            out["retryAfterSeconds"] = retry_after_seconds
        self._send(out)


def _payload_path(argv, environ):
    if "--payload" in argv and argv.index("--payload") + 1 < len(argv):
        return argv[argv.index("--payload") + 1]
    return environ.get("CONNECTOR_HOST_PAYLOAD")


def main(run, argv=None, environ=None, stream=None):
    """Run `run(payload, ctx)` as an agent and return the exit code (`agent` exits with it)."""
    argv = sys.argv if argv is None else argv
    environ = os.environ if environ is None else environ
    ctx = Context(stream)

    def stop(number, _frame):
        name = signal.Signals(number).name
        if ctx.stopped is None:
            ctx.stopped = name
            print("agent: %s received; stopping" % name, file=sys.stderr, flush=True)
            raise Stopped(name)

    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGTERM, stop)
        signal.signal(signal.SIGINT, stop)

    try:
        path = _payload_path(argv, environ)
        if not path:
            raise AgentError.non_retryable("no payload: run me as '<agent> --payload <file>' (the host does), or set CONNECTOR_HOST_PAYLOAD")
        try:
            with open(path) as handle:
                payload = Payload(json.load(handle))
        except (OSError, ValueError) as error:
            raise AgentError.non_retryable("cannot read the payload %s: %s" % (path, error))
        result = run(payload, ctx)
        ctx.result("success", result=result)
        return 0
    except AgentError as error:
        ctx.result("failure", reason=error.reason, message=error.message, retry_after_seconds=error.retry_after_seconds)
        return _EXIT_CODES[error.reason]
    except Stopped as stopped:
        ctx.result("failure", reason="RETRYABLE_ERROR", message="stopped by %s before finishing" % stopped.signal_name)
        return 75
    except Exception as error:  # an unexpected error is treated like a crash: retried
        traceback.print_exc(file=sys.stderr)
        ctx.result("failure", reason="RETRYABLE_ERROR", message="%s: %s" % (type(error).__name__, error))
        return 75


def agent(run):
    """Decorator: in a script run directly, runs the function as the agent and exits. Imported
    from elsewhere (a test), it leaves the function as it was."""
    if getattr(run, "__module__", None) == "__main__":
        sys.exit(main(run))
    return run
