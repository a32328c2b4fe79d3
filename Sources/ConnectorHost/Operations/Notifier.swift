import Foundation

/// Tells a person about alerts by running the configured `notify` command through the same
/// supervisor as agents: the event as JSON on stdin and in a payload file (`--payload`), secrets
/// in the environment, a timeout. A failing or hanging notifier is logged, never fatal.
public struct Notifier: Sendable {
    public static let maxAttempts = 5

    public var settings: NotifierSettings
    public var appId: String
    public var configDirectory: String
    public var payloads: PayloadFiles
    public var logger: Logger
    public var hostEnvironment: [String: String]

    public init(
        settings: NotifierSettings, appId: String, configDirectory: String, payloads: PayloadFiles, logger: Logger,
        hostEnvironment: [String: String] = ProcessInfo.processInfo.environment
    ) {
        self.settings = settings
        self.appId = appId
        self.configDirectory = configDirectory
        self.payloads = payloads
        self.logger = logger
        self.hostEnvironment = hostEnvironment
    }

    /// What the notifier reads.
    public func message(_ pending: PendingNotification) -> JSONValue {
        var o = JSONObject()
        o["event"] = .string(pending.event.rawValue)
        o["appId"] = .string(appId)
        o["alert"] = pending.alert.json
        let verb = pending.event == .opened ? "ALERT" : "RESOLVED"
        o["text"] = .string("[\(verb)] \(pending.alert.rule.rawValue) \(pending.alert.connectionId): \(pending.alert.message)")
        return .object(o)
    }

    /// Delivers every pending opening and resolution, oldest first. Returns how many were delivered.
    @discardableResult
    public func deliverPending(store: StoreAccess) async -> Int {
        guard let pending = try? await store({ (s) throws(StoreError) in try s.pendingNotifications(maxAttempts: Self.maxAttempts) }) else { return 0 }
        var delivered = 0
        for item in pending {
            if Task.isCancelled { break }
            guard let ok = await send(item) else { break }  // cancelled: not an attempt
            _ = try? await store { (s) throws(StoreError) in try s.recordNotification(alertId: item.alert.id, event: item.event, delivered: ok) }
            if ok { delivered += 1 }
        }
        return delivered
    }

    /// true when the notifier exited 0 in time; false when it failed; nil when cancelled.
    func send(_ item: PendingNotification) async -> Bool? {
        let label = "notify"
        let secrets: [String: String]
        do {
            secrets = try SecretResolver.resolve(settings.secrets, environment: hostEnvironment)
        } catch {
            logger.error(label, "cannot notify alert \(item.alert.id): \(error)")
            return false
        }
        let redactor = Redactor(secrets: secrets.values)
        let id = "notify-\(DeterministicID.random())"
        let path: String
        do {
            path = try payloads.write(message(item), executionId: id)
        } catch {
            logger.error(label, "cannot write the notification for alert \(item.alert.id): \(error)")
            return false
        }
        defer { payloads.remove(path: path) }
        var env: [String: String] = [:]
        for name in AgentRunner.passedThrough { if let value = hostEnvironment[name] { env[name] = value } }
        if env["PATH"] == nil { env["PATH"] = "/usr/local/bin:/usr/bin:/bin" }
        for (k, v) in settings.env { env[k] = v }
        for (k, v) in secrets { env[k] = v }
        env["CONNECTOR_HOST_PAYLOAD"] = path
        env["CONNECTOR_HOST_TASK_EXECUTION_ID"] = id
        let spec = ProcessSpec(
            executable: ExecutableResolver.resolve(settings.command[0], configDirectory: configDirectory, searchPath: hostEnvironment["PATH"]),
            arguments: settings.command + ["--payload", path], environment: env.map { "\($0.key)=\($0.value)" }.sorted(), workingDirectory: configDirectory,
            stdinPath: path, timeoutSeconds: settings.timeoutSeconds, killGraceSeconds: 2, maxOutputBytes: 1 << 20,
            marker: "CONNECTOR_HOST_TASK_EXECUTION_ID=\(id)")
        let logger = self.logger
        do {
            let outcome = try await ProcessSupervisor.run(spec, onStderrLine: { line in logger.info(label, redactor.redact(line), ["stream": "stderr"]) })
            if outcome.stoppedBy == .cancelled { return nil }
            if outcome.stoppedBy == .timeout {
                logger.error(label, "notifier timed out after \(Int(settings.timeoutSeconds))s for alert \(item.alert.id); will try again")
                return false
            }
            guard outcome.termination == .exited(0) else {
                let how = switch outcome.termination {
                case .exited(let code): "exited with code \(code)"
                case .signaled(let signal): "was killed by \(SignalNames.name(signal))"
                }
                logger.error(label, "notifier \(how) for alert \(item.alert.id); will try again")
                return false
            }
            logger.info(label, "sent \(item.event.rawValue) alert \(item.alert.id) (\(item.alert.rule.rawValue), \(item.alert.connectionId))")
            return true
        } catch {
            logger.error(label, "cannot start the notifier: \(ExecutableResolver.explain(error))")
            return false
        }
    }
}
