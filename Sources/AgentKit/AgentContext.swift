import Foundation

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// What an agent tells the host while it runs: each call writes one JSON Lines message to stdout
/// (PROTOCOL.md, "Message types"). Safe to call from several tasks at once.
public final class AgentContext: Sendable {
    public enum LogLevel: String, Sendable { case debug, info, warning, error }

    private let output: MessageSink

    init(output: MessageSink) { self.output = output }

    /// Schedules a child task. `key` names what the child covers (`folder:a/b`, `page:3`): the
    /// same key from the same parent in the same scan is the same task, so never derive it from time.
    public func child(key: String, taskType: String? = nil, metadata: some Encodable) throws {
        var message: [String: JSON] = ["type": "child", "key": .string(key), "metadata": try JSON(encoding: metadata)]
        if let taskType { message["taskType"] = .string(taskType) }
        output.send(.object(message))
    }

    /// A child with no metadata.
    public func child(key: String, taskType: String? = nil) {
        var message: [String: JSON] = ["type": "child", "key": .string(key)]
        if let taskType { message["taskType"] = .string(taskType) }
        output.send(.object(message))
    }

    /// Stages the checkpoint the next run receives; committed only if the task (for a root: the
    /// whole scan) succeeds. The last one wins.
    public func checkpoint(_ value: some Encodable) throws {
        output.send(["type": "checkpoint", "metadata": try JSON(encoding: value)])
    }

    /// Adds to the task's counts; the scan sums them.
    public func stats(records: Int? = nil, bytes: Int? = nil, schema: String? = nil) {
        var message: [String: JSON] = ["type": "stats"]
        if let records { message["records"] = .number(Double(records)) }
        if let bytes { message["bytes"] = .number(Double(bytes)) }
        if let schema { message["schema"] = .string(schema) }
        output.send(.object(message))
    }

    public func progress(_ message: String, done: Int? = nil, total: Int? = nil) {
        var object: [String: JSON] = ["type": "progress", "message": .string(message)]
        if let done { object["done"] = .number(Double(done)) }
        if let total { object["total"] = .number(Double(total)) }
        output.send(.object(object))
    }

    /// A line in the host's log, labelled with the connection and task.
    public func log(_ message: String, level: LogLevel = .info) {
        output.send(["type": "log", "level": .string(level.rawValue), "message": .string(message)])
    }
}

/// Where messages go: stdout in an agent, a buffer in tests. One line per message, written whole.
final class MessageSink: Sendable {
    private let write: @Sendable (String) -> Void

    init(write: @escaping @Sendable (String) -> Void) { self.write = write }

    static let standardOutput: MessageSink = {
        let lock = NSLock()
        return MessageSink { line in
            lock.lock()
            defer { lock.unlock() }
            var bytes = Array((line + "\n").utf8)
            var offset = 0
            while offset < bytes.count {
                let written = bytes.withUnsafeMutableBytes { Foundation.write(1, $0.baseAddress! + offset, $0.count - offset) }
                if written < 0 {
                    if errno == EINTR { continue }
                    return  // stdout is gone (the host died); nothing useful left to do with the line
                }
                offset += written
            }
        }
    }()

    func send(_ message: JSON) { write(message.compactText) }
}
