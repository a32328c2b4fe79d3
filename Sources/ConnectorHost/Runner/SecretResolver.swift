import Foundation

/// Reads secret values at run time from the host's environment or from files. Values live only
/// in memory and in the agent's environment; never in the payload, store or logs.
public enum SecretResolver {
    public struct Failure: Error, Sendable, CustomStringConvertible {
        public var secret: String
        public var source: SecretReference
        public var reason: String
        public var description: String { "secret \(secret): \(source.sourceDescription) \(reason)" }
    }

    public static func resolve(
        _ secrets: [String: SecretReference], environment: [String: String] = ProcessInfo.processInfo.environment
    ) throws(Failure) -> [String: String] {
        var values: [String: String] = [:]
        for (name, reference) in secrets.sorted(by: { $0.key < $1.key }) {
            switch reference {
            case .environment(let variable):
                guard let value = environment[variable] else { throw Failure(secret: name, source: reference, reason: "is not set") }
                values[name] = value
            case .file(let path):
                guard let data = FileManager.default.contents(atPath: path) else {
                    let exists = FileManager.default.fileExists(atPath: path)
                    throw Failure(secret: name, source: reference, reason: exists ? "cannot be read (check its permissions)" : "does not exist")
                }
                var value = String(decoding: data, as: UTF8.self)
                // Files written by editors and `echo` end in a newline that is not part of the secret.
                if value.hasSuffix("\r\n") { value.removeLast(2) } else if value.hasSuffix("\n") { value.removeLast() }
                values[name] = value
            }
        }
        return values
    }
}
