import Foundation

/// Where the host keeps its state: an embedded SQLite file (the default), or a PostgreSQL
/// database that several hosts share (`postgresql://user@host:5432/db`).
public enum StateLocation: Sendable, Equatable {
    case file(path: String)
    case postgres(PostgresURL)

    public static func isDatabaseURL(_ spec: String) -> Bool {
        spec.hasPrefix("postgresql://") || spec.hasPrefix("postgres://")
    }
}

/// A libpq connection URL. The password is never written in it by choice: `password_env=VAR`
/// names an environment variable holding it, or libpq reads `~/.pgpass`. A password written
/// in the URL anyway is masked wherever the URL is shown.
public struct PostgresURL: Sendable, Equatable, CustomStringConvertible {
    public let raw: String

    public init(_ raw: String) { self.raw = raw }

    /// The URL with the password (if one was written in it) replaced by `***`.
    public var description: String {
        guard let scheme = raw.range(of: "://") else { return raw }
        let rest = raw[scheme.upperBound...]
        let authorityEnd = rest.firstIndex(where: { $0 == "/" || $0 == "?" }) ?? rest.endIndex
        guard let at = rest[..<authorityEnd].lastIndex(of: "@"), let colon = rest[..<at].firstIndex(of: ":") else { return raw }
        return String(raw[..<rest.index(after: colon)]) + "***" + String(rest[at...])
    }

    /// The variable `password_env` names, if any.
    var passwordVariable: String? {
        queryItems.first { $0.key == "password_env" }?.value
    }

    /// What libpq is given: the URL without our own `password_env` parameter, and the password
    /// read from that variable.
    func connectionParameters(environment: [String: String] = ProcessInfo.processInfo.environment) throws(StoreError) -> (url: String, password: String?) {
        guard let variable = passwordVariable else { return (raw, nil) }
        guard let password = environment[variable] else {
            throw StoreError(kind: .cannotOpen, message: "password_env names \(variable), which is not set in the environment", path: description)
        }
        let kept = queryItems.filter { $0.key != "password_env" }.map { "\($0.key)=\($0.value)" }
        let base = raw.split(separator: "?", maxSplits: 1).first.map(String.init) ?? raw
        return (kept.isEmpty ? base : base + "?" + kept.joined(separator: "&"), password)
    }

    private var queryItems: [(key: String, value: String)] {
        guard let query = raw.split(separator: "?", maxSplits: 1).dropFirst().first else { return [] }
        return query.split(separator: "&").map { item in
            let parts = item.split(separator: "=", maxSplits: 1)
            return (String(parts[0]), parts.count > 1 ? String(parts[1]) : "")
        }
    }
}
