import Foundation

/// One execution of an agent: the record, what it said, and how it was run.
public struct AgentExecution: Sendable {
    public var record: TaskRecord
    public var report: AgentReport
    public var verdict: StatusVerdict
    public var process: SpawnedProcess?
}

/// Runs a handler's agent for one task: writes the payload, builds the environment, supervises
/// the process and maps the outcome to a task record. Knows nothing of the store or scheduling.
public struct AgentRunner: Sendable {
    public var appId: String
    public var payloads: PayloadFiles
    public var logger: Logger
    /// The host's environment, the source of secrets and of PATH/HOME/LANG/TZ/TMPDIR.
    public var hostEnvironment: [String: String]

    public init(appId: String, stateDirectory: String, logger: Logger, hostEnvironment: [String: String] = ProcessInfo.processInfo.environment) {
        self.init(appId: appId, payloads: PayloadFiles(stateDirectory: stateDirectory), logger: logger, hostEnvironment: hostEnvironment)
    }

    public init(appId: String, payloads: PayloadFiles, logger: Logger, hostEnvironment: [String: String] = ProcessInfo.processInfo.environment) {
        self.appId = appId
        self.payloads = payloads
        self.logger = logger
        self.hostEnvironment = hostEnvironment
    }

    /// Variables an agent always gets from the host's environment (when set there).
    static let passedThrough = ["PATH", "HOME", "LANG", "TZ", "TMPDIR"]

    /// How long an agent runs before `onSpawn` hears of it. Most no-op and small tasks end sooner
    /// and so never cost the store a spawn record (a commit) or the host a read of `/proc`; a
    /// host killed meanwhile leaves an agent recovery still finds, by the execution marker in its
    /// environment. A lane also gives back the task it claimed ahead at this point
    /// (`TaskExecutor.runLane`).
    static let spawnNoticeDelaySeconds = 0.1
    /// `spawnNoticeDelaySeconds` for this runner's agents; tests hold a claim ahead longer.
    var spawnNoticeDelay = Self.spawnNoticeDelaySeconds

    /// Runs the agent. `onSpawn` sees the process once it has run for `spawnNoticeDelaySeconds`
    /// (the store records it so a restarted host can find it by pid and start time). Cancelling the calling task stops the agent (SIGTERM, grace,
    /// SIGKILL) and yields an interrupted verdict.
    public func run(
        handler: Handler, connection: Connection, context: TaskContext, configDirectory: String,
        onSpawn: @escaping @Sendable (SpawnedProcess) -> Void = { _ in }
    ) async -> AgentExecution {
        await SupervisorThreads.perform { cancelFD in
            runBlocking(handler: handler, connection: connection, context: context, configDirectory: configDirectory, cancelFD: cancelFD, onSpawn: onSpawn)
        }
    }

    /// `run` on the calling thread, blocked until the agent is reaped: for a supervisor thread
    /// (`TaskExecutor` runs a whole task there). `cancelFD` readable stops the agent.
    /// `whileRunning` is called at each `ChildMilestone` of the agent (never if it could not be spawned).
    /// `payloadSlot`: the calling lane's payload file, reused from agent to agent (`PayloadSlot`).
    func runBlocking(
        handler: Handler, connection: Connection, context: TaskContext, configDirectory: String, cancelFD: Int32,
        payloadSlot: PayloadSlot? = nil, onSpawn: @escaping @Sendable (SpawnedProcess) -> Void, whileRunning: (ChildMilestone) -> Void = { _ in }
    ) -> AgentExecution {
        let startedAt = Date()
        let label = "\(connection.id)/\(context.taskType)"
        func finish(_ verdict: StatusVerdict, report: AgentReport = AgentReport(), stderr: String = "", duration: Double = 0, started: Date = startedAt, process: SpawnedProcess? = nil, redactor: Redactor = .none) -> AgentExecution {
            // Everything past this point is stored, logged or sent to a notifier: mask it once, here.
            var verdict = verdict
            verdict.error = verdict.error.map(redactor.redact)
            verdict.result = verdict.result.map(redactor.redact)
            let report = report.redacted(redactor)
            let record = TaskRecord(
                taskId: context.taskId, taskExecutionId: context.taskExecutionId, scanId: context.scanId, parentTaskId: context.parentTaskId,
                connectionId: connection.id, handler: handler.name, type: context.taskType, trigger: context.trigger, status: verdict.status,
                failureReason: verdict.failureReason, exitCode: verdict.exitCode, signal: verdict.signal, timedOut: verdict.timedOut,
                startedAt: started, durationMs: Int((duration * 1000).rounded()), attempt: context.attempt,
                result: verdict.result, error: verdict.error, stderrTail: redactor.redact(stderr))
            return AgentExecution(record: record, report: report, verdict: verdict, process: process)
        }

        let secrets: [String: String]
        do {
            secrets = try SecretResolver.resolve(connection.secrets, environment: hostEnvironment)
        } catch {
            logger.error(label, "\(error)", ["task": context.taskId])
            return finish(StatusMapper.launchFailed("\(error)"))
        }
        let redactor = Redactor(secrets: secrets.values)
        let deadline = startedAt.addingTimeInterval(handler.timeoutSeconds)
        let payloadPath: String
        do {
            let payload = payload(handler: handler, connection: connection, context: context, deadline: deadline)
            if let payloadSlot {
                payloadPath = try payloadSlot.write(payload, executionId: context.taskExecutionId)
            } else {
                payloadPath = try payloads.write(payload, executionId: context.taskExecutionId)
            }
        } catch {
            return finish(StatusMapper.launchFailed("\(error)"))
        }
        defer { payloads.remove(path: payloadPath) }

        let executable = ExecutableResolver.resolve(handler.command[0], configDirectory: configDirectory, searchPath: hostEnvironment["PATH"])
        let marker = "CONNECTOR_HOST_TASK_EXECUTION_ID=\(context.taskExecutionId)"
        var spec = ProcessSpec(
            executable: executable, arguments: handler.command + ["--payload", payloadPath],
            environment: environment(handler: handler, connection: connection, context: context, secrets: secrets, payloadPath: payloadPath),
            workingDirectory: handler.workingDirectory, timeoutSeconds: handler.timeoutSeconds, killGraceSeconds: handler.killGraceSeconds,
            maxOutputBytes: handler.maxOutputBytes, marker: marker)
        spec.spawnNoticeDelaySeconds = spawnNoticeDelay

        let logger = self.logger
        let taskId = context.taskId
        let outcome: ProcessOutcome
        switch ProcessSupervisor.runBlocking(
            spec, cancelFD: cancelFD, onSpawn: onSpawn,
            onStderrLine: { line in logger.info(label, redactor.redact(line), ["task": taskId, "stream": "stderr"]) }, whileRunning: whileRunning
        ) {
        case .success(let value):
            outcome = value
        case .failure(let error):
            let message = ExecutableResolver.explain(error)
            logger.error(label, message, ["task": taskId])
            return finish(StatusMapper.launchFailed(message))
        }
        var report = handler.output == .json ? OutputProtocol.parse(outcome.stdout) : AgentReport()
        for entry in report.logs {
            logger.log(Logger.Level(name: entry.level) ?? .info, label, redactor.redact(entry.message), ["task": taskId, "stream": "agent"])
        }
        let stderrText = String(decoding: outcome.stderrTail, as: UTF8.self)
        let lastLine = stderrText.split(separator: "\n").last.map { String($0.prefix(500)) }
        var verdict = StatusMapper.map(outcome, handler: handler, report: report, lastStderrLine: lastLine)
        if !verdict.interrupted, let place = report.secretKeptVerbatim(redactor) {
            // A checkpoint or a child's metadata goes back to agents as written, so it cannot be
            // masked; storing it would write the secret to disk. Refuse the whole report instead.
            let original = verdict
            verdict = StatusMapper.launchFailed(
                "the agent put the value of one of the connection's secrets into \(place); secrets are never stored, so neither the checkpoint nor the children were kept")
            verdict.exitCode = original.exitCode
            verdict.signal = original.signal
            report.checkpoint = nil
            report.children = []
        }
        if outcome.strayDescendantsKilled > 0 {
            logger.warning(label, "killed \(outcome.strayDescendantsKilled) process(es) the agent left running outside its process group", ["task": taskId])
        }
        return finish(verdict, report: report, stderr: stderrText, duration: outcome.durationSeconds, started: outcome.startedAt, process: outcome.process, redactor: redactor)
    }

    /// The payload file's content (PROTOCOL.md, "Payload"). Secrets are never in it.
    public func payload(handler: Handler, connection: Connection, context: TaskContext, deadline: Date) -> JSONValue {
        var description = JSONObject()
        description["taskType"] = .string(context.taskType)
        description["isRootTask"] = .bool(context.isRootTask)
        description["trigger"] = .string(context.trigger.rawValue)
        var o = JSONObject()
        o["payloadVersion"] = 1
        o["taskId"] = .string(context.taskId)
        o["taskExecutionId"] = .string(context.taskExecutionId)
        o["scanId"] = .string(context.scanId)
        o["parentTaskId"] = JSONValue(context.parentTaskId)
        o["connectionId"] = .string(connection.id)
        o["appId"] = .string(appId)
        o["extensionKey"] = .string(handler.name)
        o["environmentId"] = .string(connection.environment)
        o["connectorFormFields"] = .object(connection.fields)
        o["taskDescription"] = .object(description)
        o["taskMetadata"] = context.taskMetadata ?? .null
        o["persistentTaskMetadata"] = context.persistentTaskMetadata ?? .null
        o["attempt"] = .int(context.attempt)
        o["deadline"] = .string(Timestamp.iso8601(deadline))
        if let event = context.connectionEvent { o["connectionEvent"] = .string(event) }
        return .object(o)
    }

    /// Minimal by default: a connector should not see the host's credentials by accident.
    func environment(handler: Handler, connection: Connection, context: TaskContext, secrets: [String: String], payloadPath: String) -> [String] {
        var env: [String: String] = handler.inheritEnvironment ? hostEnvironment : [:]
        env.reserveCapacity(env.count + 32)
        for name in Self.passedThrough { if let value = hostEnvironment[name] { env[name] = value } }
        if env["PATH"] == nil { env["PATH"] = "/usr/local/bin:/usr/bin:/bin" }
        for (name, value) in handler.env { env[name] = value }
        for (name, value) in secrets { env[name] = value }
        env["CONNECTOR_HOST_PAYLOAD"] = payloadPath
        env["CONNECTOR_HOST_TASK_ID"] = context.taskId
        env["CONNECTOR_HOST_TASK_EXECUTION_ID"] = context.taskExecutionId
        env["CONNECTOR_HOST_SCAN_ID"] = context.scanId
        env["CONNECTOR_HOST_CONNECTION_ID"] = connection.id
        env["CONNECTOR_HOST_TASK_TYPE"] = context.taskType
        env["CONNECTOR_HOST_ATTEMPT"] = String(context.attempt)
        env["CONNECTOR_HOST_APP_ID"] = appId
        env["CONNECTOR_HOST_ENVIRONMENT"] = connection.environment
        env["CONNECTOR_HOST_TRIGGER"] = context.trigger.rawValue
        env["CONNECTOR_HOST_IS_ROOT_TASK"] = context.isRootTask ? "1" : "0"
        if let parent = context.parentTaskId { env["CONNECTOR_HOST_PARENT_TASK_ID"] = parent }
        for (name, value) in AgentVariables.flatten(.object(connection.fields), prefix: "CONNECTOR_HOST_FIELD_") { env[name] = value }
        for (name, value) in AgentVariables.flatten(context.persistentTaskMetadata, prefix: "CONNECTOR_HOST_CHECKPOINT_", whole: "CONNECTOR_HOST_CHECKPOINT") {
            env[name] = value
        }
        for (name, value) in AgentVariables.flatten(context.taskMetadata, prefix: "CONNECTOR_HOST_METADATA_", whole: "CONNECTOR_HOST_METADATA") {
            env[name] = value
        }
        return env.map { $0.key + "=" + $0.value }.sorted()
    }
}
