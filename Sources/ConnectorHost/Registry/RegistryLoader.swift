import Foundation

/// Reads and validates `plugins.json`. It reports every problem at once, never only the first,
/// so one `validate` shows the user all there is to fix.
public enum RegistryLoader {
    /// Configs are small; anything larger is a mistake (a log or a dump), not a registry.
    static let maxFileBytes = 10 * 1024 * 1024

    public struct Options: Sendable {
        /// Check that every handler's executable exists and is executable. `validate`, `run`,
        /// `daemon` (also on reload) and `exec` do: a config naming a missing agent is refused
        /// before the state is touched, rather than failing its tasks one by one. Read-only
        /// commands (`status`, `runs`…) do not, so they still work while an agent is missing.
        public var checkExecutables = false
        /// `--state` from the command line, overriding the config's `state`.
        public var stateOverride: String?
        public init(checkExecutables: Bool = false, stateOverride: String? = nil) {
            self.checkExecutables = checkExecutables
            self.stateOverride = stateOverride
        }
    }

    public static func load(file: String, options: Options = Options()) throws(ConfigError) -> Registry {
        let bytes = try readFile(file)
        let document: JSONValue
        do {
            document = try JSONParser.parse(bytes)
        } catch {
            throw ConfigError(file: file, problems: [.init(path: error.path, message: "invalid JSON: \(error)")])
        }
        let absolute = URL(fileURLWithPath: file).standardizedFileURL
        let directory = absolute.deletingLastPathComponent().path
        var reader = ConfigReader(directory: directory, checkExecutables: options.checkExecutables)
        let registry = reader.registry(document, file: file, stateOverride: options.stateOverride)
        if !reader.problems.isEmpty || registry == nil {
            throw ConfigError(file: file, problems: reader.problems)
        }
        return registry!
    }

    static func readFile(_ file: String) throws(ConfigError) -> [UInt8] {
        func fail(_ message: String) -> ConfigError { ConfigError(file: file, problems: [.init(path: "", message: message)]) }
        var isDirectory: ObjCBool = false
        guard FileManager.default.fileExists(atPath: file, isDirectory: &isDirectory) else {
            throw fail("no such file (give another with --config or CONNECTOR_HOST_CONFIG)")
        }
        if isDirectory.boolValue { throw fail("is a directory, not a config file") }
        let size = (try? FileManager.default.attributesOfItem(atPath: file)[.size] as? Int) ?? 0
        if size > maxFileBytes {
            let mebibytes = { (bytes: Int) in String(format: "%.1f MiB", Double(bytes) / 1_048_576) }
            throw fail("file is \(mebibytes(size)) (\(size) bytes); a config file may be at most \(mebibytes(maxFileBytes)): is this the right file?")
        }
        guard let data = FileManager.default.contents(atPath: file) else { throw fail("cannot be read (check its permissions)") }
        return [UInt8](data)
    }
}

/// Walks the JSON document, collecting problems as it goes.
struct ConfigReader {
    let directory: String
    let checkExecutables: Bool
    var problems: [ConfigError.Problem] = []

    init(directory: String, checkExecutables: Bool) {
        self.directory = directory
        self.checkExecutables = checkExecutables
    }

    static let topLevelKeys = [
        "version", "state", "payloadDirectory", "durability", "concurrency", "shutdownGraceSeconds", "leaseSeconds", "retry", "limits", "handlers", "connections", "alerts", "notify", "retention", "metrics",
    ]
    static let handlerKeys = [
        "command", "taskTypes", "output", "timeoutSeconds", "killGraceSeconds", "maxOutputBytes", "env", "exitCodes",
        "workingDirectory", "inheritEnvironment", "lifecycle", "maxConcurrency", "retry", "description",
    ]
    static let connectionKeys = ["handler", "environment", "enabled", "fields", "secrets", "tasks", "maxConcurrency", "description"]
    static let taskKeys = ["type", "every", "cron", "timezone"]
    static let retryKeys = ["maxAttempts", "initialIntervalSeconds", "backoffCoefficient", "maximumIntervalSeconds", "jitter", "maxRateLimitedSeconds"]
    static let limitKeys = ["maxChildrenPerTask", "maxDepth", "maxTasksPerScan"]

    mutating func problem(_ path: String, _ message: String) {
        problems.append(.init(path: path, message: message))
    }

    func join(_ path: String, _ key: String) -> String { path.isEmpty ? key : "\(path).\(key)" }

    func absolute(_ path: String) -> String {
        if path.hasPrefix("/") { return URL(fileURLWithPath: path).standardizedFileURL.path }
        return URL(fileURLWithPath: directory).appendingPathComponent(path).standardizedFileURL.path
    }

    /// The object at `path`, with unknown keys reported.
    mutating func object(_ value: JSONValue, _ path: String, allowed: [String]) -> JSONObject? {
        guard let object = value.objectValue else {
            problem(path, "expected an object, found \(value.kindName)")
            return nil
        }
        for key in object.keys where !allowed.contains(key) {
            problem(join(path, key), "unknown key\(Suggestion.hint(for: key, in: allowed))")
        }
        return object
    }

    mutating func string(_ value: JSONValue?, _ path: String) -> String? {
        guard let value else { return nil }
        guard let s = value.stringValue else { problem(path, "expected a string, found \(value.kindName)"); return nil }
        return s
    }

    mutating func bool(_ value: JSONValue?, _ path: String, default fallback: Bool) -> Bool {
        guard let value else { return fallback }
        guard let b = value.boolValue else { problem(path, "expected true or false, found \(value.kindName)"); return fallback }
        return b
    }

    mutating func number(_ value: JSONValue?, _ path: String, default fallback: Double, range: ClosedRange<Double>) -> Double {
        guard let value else { return fallback }
        guard let d = value.doubleValue else { problem(path, "expected a number, found \(value.kindName)"); return fallback }
        guard range.contains(d) else {
            problem(path, "\(Self.format(d)) is out of range (\(Self.format(range.lowerBound)) to \(Self.format(range.upperBound)))")
            return fallback
        }
        return d
    }

    mutating func integer(_ value: JSONValue?, _ path: String, range: ClosedRange<Int>) -> Int? {
        guard let value else { return nil }
        guard let i = value.intValue else { problem(path, "expected a whole number, found \(value.kindName == "a number" ? "a fraction" : value.kindName)"); return nil }
        guard range.contains(i) else { problem(path, "\(i) is out of range (\(range.lowerBound) to \(range.upperBound))"); return nil }
        return i
    }

    static func format(_ d: Double) -> String { d == d.rounded() && abs(d) < 1e15 ? String(Int64(d)) : String(d) }

    static func isEnvironmentName(_ name: String) -> Bool {
        guard let first = name.unicodeScalars.first, first == "_" || (first.isASCII && first.properties.isAlphabetic) else { return false }
        return name.unicodeScalars.allSatisfy { $0 == "_" || ($0.isASCII && ($0.properties.isAlphabetic || ("0"..."9").contains($0))) }
    }

    mutating func registry(_ document: JSONValue, file: String, stateOverride: String?) -> Registry? {
        guard let root = object(document, "", allowed: Self.topLevelKeys) else { return nil }
        if let version = root["version"] {
            if version.intValue != 1 { problem("version", "unsupported version \(version.serialized()); this host reads version 1") }
        } else {
            problem("version", "missing; add \"version\": 1")
        }
        let statePath: String
        let stateSpec = stateOverride ?? string(root["state"], "state") ?? ".connector-host/state.sqlite"
        if StateLocation.isDatabaseURL(stateSpec) {
            statePath = stateSpec
        } else if let override = stateOverride {
            statePath = URL(fileURLWithPath: override).standardizedFileURL.path
        } else {
            statePath = absolute(stateSpec)
        }
        var payloadDirectory: String?
        if let text = string(root["payloadDirectory"], "payloadDirectory") {
            if text.isEmpty {
                problem("payloadDirectory", "empty; name a directory, or leave the key out to let the host choose one in memory")
            } else {
                payloadDirectory = absolute(text)
            }
        }
        let concurrency = integer(root["concurrency"], "concurrency", range: 1...1024) ?? ProcessInfo.processInfo.activeProcessorCount
        let grace = number(root["shutdownGraceSeconds"], "shutdownGraceSeconds", default: 30, range: 0...86400)
        let lease = number(root["leaseSeconds"], "leaseSeconds", default: 30, range: 1...3600)
        let retry = root["retry"].map { retryPolicy($0, "retry", base: RetryPolicy()) } ?? RetryPolicy()
        var limits = FanOutLimits()
        if let value = root["limits"], let o = object(value, "limits", allowed: Self.limitKeys) {
            limits.maxChildrenPerTask = integer(o["maxChildrenPerTask"], "limits.maxChildrenPerTask", range: 0...10_000_000) ?? limits.maxChildrenPerTask
            limits.maxDepth = integer(o["maxDepth"], "limits.maxDepth", range: 0...1000) ?? limits.maxDepth
            limits.maxTasksPerScan = integer(o["maxTasksPerScan"], "limits.maxTasksPerScan", range: 1...100_000_000) ?? limits.maxTasksPerScan
        }

        var handlers: [String: Handler] = [:]
        if let value = root["handlers"] {
            if let o = value.objectValue {
                for member in o.members {
                    let path = "handlers.\(member.key)"
                    if !Identifier.isValid(member.key) {
                        problem(path, "invalid handler id; use letters, digits, '_', '.', '-' (at most 128, starting with a letter or digit)")
                        continue
                    }
                    if let h = handler(member.value, name: member.key, path: path, globalRetry: retry) { handlers[member.key] = h }
                }
            } else {
                problem("handlers", "expected an object, found \(value.kindName)")
            }
        } else {
            problem("handlers", "missing; a config needs at least one handler")
        }

        var connections: [String: Connection] = [:]
        if let value = root["connections"] {
            if let o = value.objectValue {
                for member in o.members {
                    let path = "connections.\(member.key)"
                    if !Identifier.isValid(member.key) {
                        problem(path, "invalid connection id; use letters, digits, '_', '.', '-' (at most 128, starting with a letter or digit)")
                        continue
                    }
                    if let c = connection(member.value, id: member.key, path: path, handlers: handlers, declaredHandlers: root["handlers"]?.objectValue?.keys ?? []) {
                        connections[member.key] = c
                    }
                }
            } else {
                problem("connections", "expected an object, found \(value.kindName)")
            }
        }
        let operations = self.operations(root)
        var durability = Durability.normal
        if let text = string(root["durability"], "durability") {
            if let chosen = Durability(rawValue: text) {
                durability = chosen
            } else {
                problem("durability", "unknown value \"\(text)\" (normal or full)")
            }
        }
        guard problems.isEmpty else { return nil }
        return Registry(
            file: file, directory: directory, statePath: statePath, concurrency: concurrency, shutdownGraceSeconds: grace,
            retry: retry, limits: limits, handlers: handlers, connections: connections, operations: operations, durability: durability,
            leaseSeconds: lease, payloadDirectory: payloadDirectory)
    }

    mutating func retryPolicy(_ value: JSONValue, _ path: String, base: RetryPolicy) -> RetryPolicy {
        var policy = base
        guard let o = object(value, path, allowed: Self.retryKeys) else { return policy }
        policy.maxAttempts = integer(o["maxAttempts"], join(path, "maxAttempts"), range: 1...1000) ?? base.maxAttempts
        policy.initialIntervalSeconds = number(o["initialIntervalSeconds"], join(path, "initialIntervalSeconds"), default: base.initialIntervalSeconds, range: 0...86400)
        policy.backoffCoefficient = number(o["backoffCoefficient"], join(path, "backoffCoefficient"), default: base.backoffCoefficient, range: 1...100)
        policy.maximumIntervalSeconds = number(o["maximumIntervalSeconds"], join(path, "maximumIntervalSeconds"), default: base.maximumIntervalSeconds, range: 0...(7 * 86400))
        policy.jitter = number(o["jitter"], join(path, "jitter"), default: base.jitter, range: 0...1)
        policy.maxRateLimitedSeconds = number(o["maxRateLimitedSeconds"], join(path, "maxRateLimitedSeconds"), default: base.maxRateLimitedSeconds, range: 0...(30 * 86400))
        return policy
    }

    mutating func handler(_ value: JSONValue, name: String, path: String, globalRetry: RetryPolicy) -> Handler? {
        guard let o = object(value, path, allowed: Self.handlerKeys) else { return nil }
        let before = problems.count
        let command = self.command(o["command"], "\(path).command")
        let workingDirectory = absolute(string(o["workingDirectory"], "\(path).workingDirectory") ?? ".")
        if checkExecutables, let first = command.first, problems.count == before {
            if let issue = ExecutableResolver.problem(command: first, configDirectory: directory) { problem("\(path).command[0]", issue) }
        }
        var taskTypes: [String] = []
        if let t = o["taskTypes"] {
            if let array = t.arrayValue, !array.isEmpty {
                for (i, element) in array.enumerated() {
                    guard let s = element.stringValue else { problem("\(path).taskTypes[\(i)]", "expected a string, found \(element.kindName)"); continue }
                    if TaskType(s) == nil {
                        problem("\(path).taskTypes[\(i)]", "invalid task type \"\(s)\"; use a standard type or one matching ^[a-z][a-z0-9_.-]{0,254}$\(Suggestion.hint(for: s, in: TaskType.standard))")
                    } else if taskTypes.contains(s) {
                        problem("\(path).taskTypes[\(i)]", "\"\(s)\" is listed twice")
                    } else {
                        taskTypes.append(s)
                    }
                }
            } else {
                problem("\(path).taskTypes", "expected a non-empty array of task types, found \(t.arrayValue == nil ? t.kindName : "an empty array")")
            }
        } else {
            problem("\(path).taskTypes", "missing; list the task types this handler runs, e.g. [\"entity_ingestion_full\"]")
        }
        var output = Handler.OutputMode.json
        if let s = string(o["output"], "\(path).output") {
            if let mode = Handler.OutputMode(rawValue: s) { output = mode } else {
                problem("\(path).output", "unknown output mode \"\(s)\"; use \"json\" or \"nagios\"")
            }
        }
        let timeout = number(o["timeoutSeconds"], "\(path).timeoutSeconds", default: 900, range: 0.001...(7 * 86400))
        let grace = number(o["killGraceSeconds"], "\(path).killGraceSeconds", default: 10, range: 0...3600)
        let cap = integer(o["maxOutputBytes"], "\(path).maxOutputBytes", range: 1024...(1 << 30)) ?? 16 * 1024 * 1024
        var env: [String: String] = [:]
        if let e = o["env"], let eo = object(e, "\(path).env", allowed: e.objectValue?.keys ?? []) {
            for member in eo.members {
                let p = "\(path).env.\(member.key)"
                if !Self.isEnvironmentName(member.key) { problem(p, "invalid environment variable name"); continue }
                if let s = member.value.stringValue { env[member.key] = s } else { problem(p, "expected a string, found \(member.value.kindName)") }
            }
        }
        var exitCodes: [Int32: ReportedOutcome] = [:]
        if let e = o["exitCodes"], let eo = object(e, "\(path).exitCodes", allowed: e.objectValue?.keys ?? []) {
            let names = ["success"] + FailureReason.allCases.map(\.rawValue)
            for member in eo.members {
                let p = "\(path).exitCodes.\(member.key)"
                guard let code = Int32(member.key), (0...255).contains(code) else { problem(p, "key must be an exit code from 0 to 255"); continue }
                guard let s = member.value.stringValue else { problem(p, "expected a string, found \(member.value.kindName)"); continue }
                guard let outcome = ReportedOutcome(configName: s) else {
                    problem(p, "unknown outcome \"\(s)\"; use \"success\" or a failure reason\(Suggestion.hint(for: s, in: names))")
                    continue
                }
                exitCodes[code] = outcome
            }
        }
        let inherit = bool(o["inheritEnvironment"], "\(path).inheritEnvironment", default: false)
        let lifecycle = bool(o["lifecycle"], "\(path).lifecycle", default: false)
        let maxConcurrency = integer(o["maxConcurrency"], "\(path).maxConcurrency", range: 1...1024)
        let retry = o["retry"].map { retryPolicy($0, "\(path).retry", base: globalRetry) }
        _ = string(o["description"], "\(path).description")
        guard problems.count == before else { return nil }
        return Handler(
            name: name, command: command, taskTypes: taskTypes, output: output, timeoutSeconds: timeout, killGraceSeconds: grace,
            maxOutputBytes: cap, env: env, exitCodes: exitCodes, workingDirectory: workingDirectory, inheritEnvironment: inherit,
            lifecycle: lifecycle, maxConcurrency: maxConcurrency, retry: retry)
    }

    mutating func connection(_ value: JSONValue, id: String, path: String, handlers: [String: Handler], declaredHandlers: [String]) -> Connection? {
        guard let o = object(value, path, allowed: Self.connectionKeys) else { return nil }
        let before = problems.count
        let handlerName = string(o["handler"], "\(path).handler")
        if o["handler"] == nil { problem("\(path).handler", "missing; name one of the handlers") }
        if let h = handlerName, !declaredHandlers.contains(h) {
            problem("\(path).handler", "unknown handler \"\(h)\"\(Suggestion.hint(for: h, in: declaredHandlers))")
        }
        let handler = handlerName.flatMap { handlers[$0] }
        let environment = string(o["environment"], "\(path).environment") ?? "default"
        if !Identifier.isValid(environment) { problem("\(path).environment", "invalid environment name \"\(environment)\"") }
        let enabled = bool(o["enabled"], "\(path).enabled", default: true)
        var fields = JSONObject()
        if let f = o["fields"] {
            if let fo = f.objectValue { fields = fo } else { problem("\(path).fields", "expected an object, found \(f.kindName)") }
        }
        let secrets = self.secrets(o["secrets"], "\(path).secrets")
        var tasks: [ScheduledTask] = []
        if let t = o["tasks"] {
            if let array = t.arrayValue {
                for (i, element) in array.enumerated() {
                    if let task = scheduledTask(element, "\(path).tasks[\(i)]", handler: handler) {
                        if tasks.contains(where: { $0.type == task.type }) {
                            problem("\(path).tasks[\(i)].type", "\"\(task.type)\" is scheduled twice; one schedule per task type")
                        } else {
                            tasks.append(task)
                        }
                    }
                }
            } else {
                problem("\(path).tasks", "expected an array, found \(t.kindName)")
            }
        }
        let maxConcurrency = integer(o["maxConcurrency"], "\(path).maxConcurrency", range: 1...1024)
        _ = string(o["description"], "\(path).description")
        guard problems.count == before, let handlerName else { return nil }
        return Connection(
            id: id, handler: handlerName, environment: environment, enabled: enabled, fields: fields, secrets: secrets, tasks: tasks,
            maxConcurrency: maxConcurrency, configJSON: value)
    }

    mutating func scheduledTask(_ value: JSONValue, _ path: String, handler: Handler?) -> ScheduledTask? {
        guard let o = object(value, path, allowed: Self.taskKeys) else { return nil }
        let before = problems.count
        let type = string(o["type"], "\(path).type")
        if o["type"] == nil { problem("\(path).type", "missing; name a task type of the handler") }
        if let type, let handler, !handler.taskTypes.contains(type) {
            problem("\(path).type", "handler \"\(handler.name)\" does not run \"\(type)\" (it lists \(handler.taskTypes.joined(separator: ", ")))\(Suggestion.hint(for: type, in: handler.taskTypes))")
        }
        // The host's zone is looked up only for a cron schedule that names none (the lookup
        // was a tenth of reading a registry of interval schedules).
        var timeZone: TimeZone?
        if let name = string(o["timezone"], "\(path).timezone") {
            if let tz = TimeZone(identifier: name) { timeZone = tz } else { problem("\(path).timezone", "unknown time zone \"\(name)\"; use an IANA name like \"Europe/Berlin\"") }
        }
        var schedule: Schedule?
        switch (o["every"], o["cron"]) {
        case (let e?, nil):
            if let text = string(e, "\(path).every") {
                if let seconds = DurationText.seconds(text), seconds >= 1 {
                    schedule = .every(seconds: seconds)
                    if o["timezone"] != nil { problem("\(path).timezone", "only applies to \"cron\" schedules") }
                } else {
                    problem("\(path).every", "invalid duration \"\(text)\"; use a number with s, m, h or d, e.g. \"90s\", \"30m\", \"1d\" (at least 1s)")
                }
            }
        case (nil, let c?):
            if let text = string(c, "\(path).cron") {
                do { schedule = .cron(try CronExpression(text), timeZone ?? .current) } catch { problem("\(path).cron", "invalid cron \"\(text)\": \(error)") }
            }
        case (nil, nil):
            problem(path, "needs \"every\" (e.g. \"30m\") or \"cron\" (e.g. \"0 3 * * 0\")")
        default:
            problem(path, "give either \"every\" or \"cron\", not both")
        }
        guard problems.count == before, let type, let schedule else { return nil }
        return ScheduledTask(type: type, schedule: schedule)
    }
}
