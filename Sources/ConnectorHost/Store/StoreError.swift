import Foundation

/// An error from the state database, with the statement that caused it and a hint a person can act on.
public struct StoreError: Error, Sendable, CustomStringConvertible {
    public enum Kind: Sendable { case cannotOpen, readOnly, full, corrupt, busy, schema, other }
    public var kind: Kind
    public var message: String
    /// The state file, or the database URL with any password masked.
    public var path: String
    /// PostgreSQL's SQLSTATE code, when the server sent one.
    var sqlState: String?

    public init(kind: Kind, message: String, path: String) {
        self.kind = kind
        self.message = message
        self.path = path
    }

    var isDatabaseServer: Bool { StateLocation.isDatabaseURL(path) }

    public var description: String {
        if isDatabaseServer {
            return switch kind {
            case .cannotOpen: "cannot reach state database \(path): \(message) (check that the server is up, and the URL, the user and the password: password_env=VAR in the URL, or ~/.pgpass)"
            case .readOnly: "state database \(path) refused a write: \(message) (check the user's privileges, and that the server is not a read-only standby)"
            case .full: "state database \(path): the server is out of space: \(message) (free space and run again; nothing was lost)"
            case .busy: "state database \(path): \(message) (a conflicting transaction on another host; run again)"
            default: "state database \(path): \(message)"
            }
        }
        return switch kind {
        case .cannotOpen: "cannot open state file \(path): \(message) (check that its directory exists and is writable, or pass --state)"
        case .readOnly: "state file \(path) is read-only: \(message) (check the permissions of the file and its directory)"
        case .full: "state file \(path): the disk is full: \(message) (free space and run again; nothing was lost)"
        case .corrupt: "state file \(path) is damaged: \(message) (restore it from a backup, or move it aside to start fresh; it was not modified)"
        case .busy: "state file \(path) is locked by another process: \(message)"
        case .schema: "state file \(path): \(message)"
        case .other: "state file \(path): \(message)"
        }
    }

    /// The sysexits code for this failure: 74 (I/O) for disk, permission and connection
    /// problems, 70 otherwise.
    public var exitCode: Int32 {
        switch kind {
        case .cannotOpen, .readOnly, .full: 74
        default: 70
        }
    }
}
