import Testing

@testable import ConnectorHost

/// libpq is loaded at the first PostgreSQL connection, not linked (`LibPQ`).
@Suite struct LibPQTests {
    @Test func theInstalledLibraryLoadsWithEveryFunctionTheStoreCalls() throws {
        let functions = try LibPQ.load(from: LibPQ.candidates).get()
        #expect(functions.PQconnectdbParams != nil)
        #expect(functions.PQsendQueryPrepared != nil)
        #expect(functions.PQstatus != nil)
    }

    @Test func aMissingLibraryIsReportedWithThePackageToInstall() {
        guard case .failure(let error) = LibPQ.load(from: ["libpq-not-installed.so.5"]) else {
            Issue.record("a library that does not exist loaded")
            return
        }
        #expect(error.message.contains("PostgreSQL state needs libpq"))
        #expect(error.message.contains("apt install libpq5"))
        #expect(error.message.contains("libpq-not-installed.so.5"))
    }

    #if os(Linux)
    @Test func aLibraryWithoutLibpqsFunctionsIsReportedByTheirNames() {
        // libc loads, but has none of libpq's functions: each is named.
        guard case .failure(let error) = LibPQ.load(from: ["libc.so.6"]) else {
            Issue.record("libc passed for libpq")
            return
        }
        #expect(error.message.contains("PQconnectdbParams"))
        #expect(error.message.contains("PQpipelineSync"))
        #expect(error.message.hasPrefix("libc.so.6 lacks"))
    }
    #endif
}
