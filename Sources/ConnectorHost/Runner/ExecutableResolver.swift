#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import Foundation

/// Turns a handler's `command[0]` into the path to spawn, and a failed spawn into a message that
/// names the real cause (a bad `#!` interpreter is not "file not found").
enum ExecutableResolver {
    /// A path with a '/' resolves against the config's directory; a bare name is looked up in PATH.
    static func resolve(_ command: String, configDirectory: String, searchPath: String? = ProcessInfo.processInfo.environment["PATH"]) -> String {
        // A Character, not a String: Foundation's substring search was a per-task cost.
        if command.contains("/" as Character) {
            if command.hasPrefix("/") { return command }
            return URL(fileURLWithPath: configDirectory).appendingPathComponent(command).standardizedFileURL.path
        }
        for directory in (searchPath ?? "/usr/local/bin:/usr/bin:/bin").split(separator: ":") {
            let candidate = "\(directory)/\(command)"
            if access(candidate, X_OK) == 0 { return candidate }
        }
        return command
    }

    /// What is wrong with the executable, for `validate`; nil when it looks runnable.
    static func problem(command: String, configDirectory: String) -> String? {
        let path = resolve(command, configDirectory: configDirectory)
        if !path.hasPrefix("/") { return "\"\(command)\" was not found in PATH" }
        if access(path, F_OK) != 0 { return "\(path) does not exist" }
        var isDirectory: ObjCBool = false
        if FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory), isDirectory.boolValue { return "\(path) is a directory" }
        if access(path, X_OK) != 0 { return "\(path) is not executable (chmod +x \(path))" }
        if let interpreter = interpreter(of: path), access(interpreter, X_OK) != 0 {
            return "\(path) names the interpreter \(interpreter) in its #! line, which \(access(interpreter, F_OK) == 0 ? "is not executable" : "does not exist")"
        }
        return nil
    }

    /// The cause of a failed spawn, in words a person can act on.
    static func explain(_ failure: LaunchFailure) -> String {
        let path = failure.executable
        let reason = String(cString: strerror(failure.code))
        switch failure.code {
        case ENOENT:
            if !path.hasPrefix("/") { return "could not start \"\(path)\": not found in PATH" }
            if access(path, F_OK) != 0 { return "could not start \(path): the file does not exist" }
            if let interpreter = interpreter(of: path) {
                return "could not start \(path): bad interpreter \(interpreter) (named in its #! line): \(access(interpreter, F_OK) == 0 ? "not executable" : "no such file")"
            }
            return "could not start \(path): \(reason) (a missing dynamic loader or library?)"
        case EACCES:
            var isDirectory: ObjCBool = false
            if FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory), isDirectory.boolValue {
                return "could not start \(path): it is a directory"
            }
            if access(path, X_OK) != 0 { return "could not start \(path): permission denied, the file is not executable (chmod +x \(path))" }
            if let interpreter = interpreter(of: path) { return "could not start \(path): permission denied running its interpreter \(interpreter)" }
            return "could not start \(path): permission denied (is its file system mounted noexec?)"
        case ENOEXEC:
            return "could not start \(path): not an executable format (a script needs a #! line)"
        default:
            return "could not start \(path): \(reason)"
        }
    }

    /// The interpreter named by a `#!` line, if the file starts with one.
    static func interpreter(of path: String) -> String? {
        guard let bytes = ProcFS.readSmallFileBytes(path, limit: 256), bytes.starts(with: [0x23, 0x21]) else { return nil }
        let line = bytes.dropFirst(2).prefix { $0 != 0x0A }
        let text = String(decoding: line, as: UTF8.self).trimmingCharacters(in: .whitespaces)
        return text.split(whereSeparator: { $0 == " " || $0 == "\t" }).first.map(String.init)
    }
}
