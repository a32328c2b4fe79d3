#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import Foundation
import Synchronization

/// The host's log: one line per event on stderr,
/// `<ISO 8601> <level> <label>: key=value ... message`, or one JSON object per line.
public final class Logger: Sendable {
    public enum Level: Int, Sendable, Comparable, CaseIterable {
        case debug, info, warning, error
        public var name: String { ["debug", "info", "warning", "error"][rawValue] }
        public init?(name: String) {
            guard let level = Level.allCases.first(where: { $0.name == name.lowercased() || (name.lowercased() == "warn" && $0 == .warning) }) else { return nil }
            self = level
        }
        public static func < (a: Level, b: Level) -> Bool { a.rawValue < b.rawValue }
    }

    public enum Format: String, Sendable { case text, json }

    public let minimum: Level
    public let format: Format
    private let output: Mutex<Int32>

    public init(minimum: Level = .info, format: Format = .text, fileDescriptor: Int32 = 2) {
        self.minimum = minimum
        self.format = format
        self.output = Mutex(fileDescriptor)
    }

    /// Discards everything (tests that only look at records).
    public static let silent = Logger(minimum: .error, fileDescriptor: -1)

    /// The label, message and metadata are evaluated only when `level` is logged (as in
    /// swift-log): a filtered-out line costs a comparison, however much text it would have held.
    public func log(
        _ level: Level, _ label: @autoclosure () -> String, _ message: @autoclosure () -> String,
        _ metadata: @autoclosure () -> KeyValuePairs<String, String> = [:]
    ) {
        guard level >= minimum else { return }
        let (label, message, metadata) = (label(), message(), metadata())
        var line: String
        let time = Timestamp.iso8601(Date())
        switch format {
        case .text:
            line = "\(time) \(level.name) \(label):"
            for (key, value) in metadata {
                let needsQuotes = value.isEmpty || value.contains(where: { $0 == " " || $0 == "\"" || $0 == "=" })
                line += " \(key)=" + (needsQuotes ? JSONValue.string(value).serialized() : value)
            }
            line += " \(message)\n"
        case .json:
            var object = JSONObject([("time", .string(time)), ("level", .string(level.name)), ("label", .string(label))])
            for (key, value) in metadata { object[key] = .string(value) }
            object["message"] = .string(message)
            line = JSONValue.object(object).serialized() + "\n"
        }
        output.withLock { fd in
            if fd >= 0 { FileDescriptorIO.writeAll(fd, line.utf8) }
        }
    }

    public func debug(_ label: @autoclosure () -> String, _ message: @autoclosure () -> String, _ metadata: @autoclosure () -> KeyValuePairs<String, String> = [:]) {
        log(.debug, label(), message(), metadata())
    }
    public func info(_ label: @autoclosure () -> String, _ message: @autoclosure () -> String, _ metadata: @autoclosure () -> KeyValuePairs<String, String> = [:]) {
        log(.info, label(), message(), metadata())
    }
    public func warning(_ label: @autoclosure () -> String, _ message: @autoclosure () -> String, _ metadata: @autoclosure () -> KeyValuePairs<String, String> = [:]) {
        log(.warning, label(), message(), metadata())
    }
    public func error(_ label: @autoclosure () -> String, _ message: @autoclosure () -> String, _ metadata: @autoclosure () -> KeyValuePairs<String, String> = [:]) {
        log(.error, label(), message(), metadata())
    }
}
