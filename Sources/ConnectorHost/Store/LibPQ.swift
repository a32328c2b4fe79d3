#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import CPostgreSQL

/// libpq, loaded at the first PostgreSQL connection instead of linked into the executable.
///
/// Linked, libpq and the twenty libraries it needs (TLS, Kerberos, LDAP, SASL) were loaded and
/// initialised by every command before `main`, about 5 ms of an 8 ms `--version` and of each
/// `run` on SQLite, which uses none of them. The functions below keep libpq's own names, so
/// the store's code reads like libpq's documentation; they shadow the header's declarations in
/// this module and call through `ch_libpq_functions`, whose pointer types come from that header.
enum LibPQ {
    /// Where dlopen looks: the runtime library's versioned name (Debian's `libpq5` package),
    /// then Homebrew's keg-only installs on macOS.
    #if canImport(Darwin)
    static let candidates = ["libpq.5.dylib", "/opt/homebrew/opt/libpq/lib/libpq.5.dylib", "/usr/local/opt/libpq/lib/libpq.5.dylib"]
    #else
    static let candidates = ["libpq.so.5"]
    #endif

    private static let loaded: Result<ch_libpq_functions, LoadError> = load(from: candidates)

    struct LoadError: Error {
        var message: String
    }

    /// Loads libpq if no connection has yet; throws, naming the state, when it cannot.
    static func require(for state: String) throws(StoreError) {
        if case .failure(let error) = loaded {
            throw StoreError(kind: .cannotOpen, message: error.message, path: state)
        }
    }

    /// The loaded functions. Only after `require` succeeded: every connection is made after it.
    static var functions: ch_libpq_functions {
        switch loaded {
        case .success(let functions): return functions
        case .failure(let error): fatalError("libpq used before LibPQ.require: \(error.message)")
        }
    }

    /// The first of `names` dlopen finds, with every function bound; otherwise what went wrong.
    static func load(from names: [String]) -> Result<ch_libpq_functions, LoadError> {
        var failures: [String] = []
        var library: UnsafeMutableRawPointer?
        var loadedName = ""
        for name in names {
            library = dlopen(name, RTLD_NOW | RTLD_LOCAL)
            loadedName = name
            if library != nil { break }
            failures.append(dlerror().map { String(cString: $0) } ?? name)
        }
        guard let library else {
            return .failure(LoadError(message: "a PostgreSQL state needs libpq, which could not be loaded (Debian: apt install libpq5): " + failures.joined(separator: "; ")))
        }
        var functions = ch_libpq_functions()
        var missing: [String] = []
        func bind<F>(_ name: String, _ field: inout F?) {
            if let symbol = dlsym(library, name) {
                field = unsafeBitCast(symbol, to: F.self)
            } else {
                missing.append(name)
            }
        }
        bind("PQclear", &functions.PQclear)
        bind("PQcmdTuples", &functions.PQcmdTuples)
        bind("PQconnectdbParams", &functions.PQconnectdbParams)
        bind("PQconsumeInput", &functions.PQconsumeInput)
        bind("PQenterPipelineMode", &functions.PQenterPipelineMode)
        bind("PQerrorMessage", &functions.PQerrorMessage)
        bind("PQexec", &functions.PQexec)
        bind("PQexecPrepared", &functions.PQexecPrepared)
        bind("PQexitPipelineMode", &functions.PQexitPipelineMode)
        bind("PQfinish", &functions.PQfinish)
        bind("PQfreemem", &functions.PQfreemem)
        bind("PQgetResult", &functions.PQgetResult)
        bind("PQgetisnull", &functions.PQgetisnull)
        bind("PQgetvalue", &functions.PQgetvalue)
        bind("PQnotifies", &functions.PQnotifies)
        bind("PQntuples", &functions.PQntuples)
        bind("PQpipelineSync", &functions.PQpipelineSync)
        bind("PQprepare", &functions.PQprepare)
        bind("PQreset", &functions.PQreset)
        bind("PQresultErrorField", &functions.PQresultErrorField)
        bind("PQresultErrorMessage", &functions.PQresultErrorMessage)
        bind("PQresultStatus", &functions.PQresultStatus)
        bind("PQsendPrepare", &functions.PQsendPrepare)
        bind("PQsendQueryPrepared", &functions.PQsendQueryPrepared)
        bind("PQsocket", &functions.PQsocket)
        bind("PQstatus", &functions.PQstatus)
        guard missing.isEmpty else {
            // Pipeline mode came with libpq 14; an older library lacks its functions.
            return .failure(LoadError(message: "\(loadedName) lacks \(missing.joined(separator: ", ")) (libpq 14 or later is needed)"))
        }
        return .success(functions)
    }
}

// The libpq calls of this module. Each goes through the pointer loaded for it.

func PQclear(_ res: OpaquePointer?) { LibPQ.functions.PQclear!(res) }
@discardableResult func PQcmdTuples(_ res: OpaquePointer?) -> UnsafeMutablePointer<CChar>! { LibPQ.functions.PQcmdTuples!(res) }
@discardableResult func PQconnectdbParams(_ keywords: UnsafePointer<UnsafePointer<CChar>?>?, _ values: UnsafePointer<UnsafePointer<CChar>?>?, _ expandDbname: Int32) -> OpaquePointer! {
    LibPQ.functions.PQconnectdbParams!(keywords, values, expandDbname)
}
@discardableResult func PQconsumeInput(_ conn: OpaquePointer?) -> Int32 { LibPQ.functions.PQconsumeInput!(conn) }
@discardableResult func PQenterPipelineMode(_ conn: OpaquePointer?) -> Int32 { LibPQ.functions.PQenterPipelineMode!(conn) }
@discardableResult func PQerrorMessage(_ conn: OpaquePointer?) -> UnsafeMutablePointer<CChar>! { LibPQ.functions.PQerrorMessage!(conn) }
@discardableResult func PQexec(_ conn: OpaquePointer?, _ query: UnsafePointer<CChar>?) -> OpaquePointer! { LibPQ.functions.PQexec!(conn, query) }
@discardableResult func PQexecPrepared(
    _ conn: OpaquePointer?, _ name: UnsafePointer<CChar>?, _ count: Int32, _ values: UnsafePointer<UnsafePointer<CChar>?>?, _ lengths: UnsafePointer<Int32>?,
    _ formats: UnsafePointer<Int32>?, _ resultFormat: Int32
) -> OpaquePointer! {
    LibPQ.functions.PQexecPrepared!(conn, name, count, values, lengths, formats, resultFormat)
}
@discardableResult func PQexitPipelineMode(_ conn: OpaquePointer?) -> Int32 { LibPQ.functions.PQexitPipelineMode!(conn) }
func PQfinish(_ conn: OpaquePointer?) { LibPQ.functions.PQfinish!(conn) }
func PQfreemem(_ pointer: UnsafeMutableRawPointer?) { LibPQ.functions.PQfreemem!(pointer) }
@discardableResult func PQgetResult(_ conn: OpaquePointer?) -> OpaquePointer! { LibPQ.functions.PQgetResult!(conn) }
@discardableResult func PQgetisnull(_ res: OpaquePointer?, _ row: Int32, _ column: Int32) -> Int32 { LibPQ.functions.PQgetisnull!(res, row, column) }
@discardableResult func PQgetvalue(_ res: OpaquePointer?, _ row: Int32, _ column: Int32) -> UnsafeMutablePointer<CChar>! { LibPQ.functions.PQgetvalue!(res, row, column) }
@discardableResult func PQnotifies(_ conn: OpaquePointer?) -> UnsafeMutablePointer<PGnotify>! { LibPQ.functions.PQnotifies!(conn) }
@discardableResult func PQntuples(_ res: OpaquePointer?) -> Int32 { LibPQ.functions.PQntuples!(res) }
@discardableResult func PQpipelineSync(_ conn: OpaquePointer?) -> Int32 { LibPQ.functions.PQpipelineSync!(conn) }
@discardableResult func PQprepare(_ conn: OpaquePointer?, _ name: UnsafePointer<CChar>?, _ query: UnsafePointer<CChar>?, _ count: Int32, _ types: UnsafePointer<Oid>?) -> OpaquePointer! {
    LibPQ.functions.PQprepare!(conn, name, query, count, types)
}
func PQreset(_ conn: OpaquePointer?) { LibPQ.functions.PQreset!(conn) }
@discardableResult func PQresultErrorField(_ res: OpaquePointer?, _ field: Int32) -> UnsafeMutablePointer<CChar>! { LibPQ.functions.PQresultErrorField!(res, field) }
@discardableResult func PQresultErrorMessage(_ res: OpaquePointer?) -> UnsafeMutablePointer<CChar>! { LibPQ.functions.PQresultErrorMessage!(res) }
@discardableResult func PQresultStatus(_ res: OpaquePointer?) -> ExecStatusType { LibPQ.functions.PQresultStatus!(res) }
@discardableResult func PQsendPrepare(_ conn: OpaquePointer?, _ name: UnsafePointer<CChar>?, _ query: UnsafePointer<CChar>?, _ count: Int32, _ types: UnsafePointer<Oid>?) -> Int32 {
    LibPQ.functions.PQsendPrepare!(conn, name, query, count, types)
}
@discardableResult func PQsendQueryPrepared(
    _ conn: OpaquePointer?, _ name: UnsafePointer<CChar>?, _ count: Int32, _ values: UnsafePointer<UnsafePointer<CChar>?>?, _ lengths: UnsafePointer<Int32>?,
    _ formats: UnsafePointer<Int32>?, _ resultFormat: Int32
) -> Int32 {
    LibPQ.functions.PQsendQueryPrepared!(conn, name, count, values, lengths, formats, resultFormat)
}
@discardableResult func PQsocket(_ conn: OpaquePointer?) -> Int32 { LibPQ.functions.PQsocket!(conn) }
@discardableResult func PQstatus(_ conn: OpaquePointer?) -> ConnStatusType { LibPQ.functions.PQstatus!(conn) }
