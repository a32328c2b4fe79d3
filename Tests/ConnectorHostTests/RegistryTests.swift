import Foundation
import Testing

@testable import ConnectorHost

@Suite struct RegistryTests {
    func problems(_ json: String, checkExecutables: Bool = false) -> [String] {
        let dir = TemporaryDirectory()
        let file = dir.write("plugins.json", json)
        do {
            _ = try RegistryLoader.load(file: file, options: .init(checkExecutables: checkExecutables))
            return []
        } catch {
            #expect(error.description.hasPrefix(file + ": "))
            return error.problems.map(\.description)
        }
    }

    static let valid = """
        {
          "version": 1,
          "handlers": {
            "folder-sync": {"command": ["/bin/true"], "taskTypes": ["entity_ingestion_full", "entity_ingestion_incremental"]}
          },
          "connections": {
            "docs": {"handler": "folder-sync", "fields": {"root": "x"},
                     "secrets": {"API_TOKEN": {"env": "DOCS_TOKEN"}, "KEY": {"file": "secrets/key"}},
                     "tasks": [{"type": "entity_ingestion_incremental", "every": "30m"},
                               {"type": "entity_ingestion_full", "cron": "0 3 * * 0", "timezone": "Europe/Berlin"}]}
          }
        }
        """

    @Test func validConfigLoadsWithDefaultsAndResolvedPaths() throws {
        let dir = TemporaryDirectory()
        let file = dir.write("plugins.json", Self.valid)
        let registry = try RegistryLoader.load(file: file)
        let handler = try #require(registry.handlers["folder-sync"])
        #expect(handler.timeoutSeconds == 900)
        #expect(handler.killGraceSeconds == 10)
        #expect(handler.maxOutputBytes == 16 * 1024 * 1024)
        #expect(handler.output == .json)
        #expect(handler.workingDirectory == dir.path)
        let docs = try #require(registry.connections["docs"])
        #expect(docs.environment == "default")
        #expect(docs.secrets["KEY"] == .file("\(dir.path)/secrets/key"))
        #expect(docs.tasks[0].schedule == .every(seconds: 1800))
        #expect(registry.statePath == "\(dir.path)/.connector-host/state.sqlite")
        #expect(registry.retry == RetryPolicy())
    }

    /// A cron schedule runs in the zone it names, or in the host's when it names none.
    @Test func cronSchedulesUseTheirZoneOrTheHosts() throws {
        let dir = TemporaryDirectory()
        let named = try RegistryLoader.load(file: dir.write("plugins.json", Self.valid))
        #expect(try #require(named.connections["docs"]).tasks[1].schedule == .cron(try CronExpression("0 3 * * 0"), TimeZone(identifier: "Europe/Berlin")!))
        let unnamed = Self.valid.replacingOccurrences(of: ", \"timezone\": \"Europe/Berlin\"", with: "")
        let host = try RegistryLoader.load(file: dir.write("host.json", unnamed))
        #expect(try #require(host.connections["docs"]).tasks[1].schedule == .cron(try CronExpression("0 3 * * 0"), TimeZone.current))
    }

    /// `payloadDirectory`: absent lets the host choose (nil), a relative path is against the config's
    /// directory, and an empty one is a mistake named as such.
    @Test func payloadDirectoryIsResolvedOrRefusedWhenEmpty() throws {
        let dir = TemporaryDirectory()
        #expect(try RegistryLoader.load(file: dir.write("plugins.json", Self.valid)).payloadDirectory == nil)
        let named = Self.valid.replacingOccurrences(of: "\"version\": 1,", with: "\"version\": 1, \"payloadDirectory\": \"run/payloads\",")
        #expect(try RegistryLoader.load(file: dir.write("named.json", named)).payloadDirectory == "\(dir.path)/run/payloads")
        let empty = Self.valid.replacingOccurrences(of: "\"version\": 1,", with: "\"version\": 1, \"payloadDirectory\": \"\",")
        #expect(problems(empty).contains { $0.hasPrefix("payloadDirectory: empty") })
    }

    @Test func everyProblemAtOnceWithPathsAndSuggestions() {
        let found = problems(
            """
            {
              "version": 1,
              "concurency": 2,
              "durability": "fast",
              "handlers": {
                "folder-sync": {"command": [], "taskTypes": ["Entity_Ingestion_Full"], "output": "xml", "timeoutSeconds": -1,
                                "exitCodes": {"300": "success", "3": "RATE_LIMTED"}, "env": {"1BAD": "x"}},
                "ok": {"command": ["/bin/true"], "taskTypes": ["entity_ingestion_full"]}
              },
              "connections": {
                "docs": {"handler": "foldr-sync", "tasks": []},
                "../etc": {"handler": "ok"},
                "c2": {"handler": "ok", "secrets": {"T": {}}, "tasks": [{"type": "entity_ingestion_full", "cron": "61 * * * *"},
                        {"type": "user_ingestion_full", "every": "soon"}], "enabled": "yes"}
              }
            }
            """)
        let expected = [
            "concurency: unknown key (did you mean \"concurrency\"?)",
            "durability: unknown value \"fast\" (normal or full)",
            "handlers.folder-sync.command: is empty; name the agent executable",
            "handlers.folder-sync.taskTypes[0]: invalid task type",
            "handlers.folder-sync.output: unknown output mode \"xml\"",
            "handlers.folder-sync.timeoutSeconds: -1 is out of range",
            "handlers.folder-sync.exitCodes.300: key must be an exit code from 0 to 255",
            "handlers.folder-sync.exitCodes.3: unknown outcome \"RATE_LIMTED\"; use \"success\" or a failure reason (did you mean \"RATE_LIMITED\"?)",
            "handlers.folder-sync.env.1BAD: invalid environment variable name",
            "connections.docs.handler: unknown handler \"foldr-sync\" (did you mean \"folder-sync\"?)",
            "connections.../etc: invalid connection id",
            "connections.c2.enabled: expected true or false, found a string",
            "connections.c2.secrets.T: needs \"env\"",
            "connections.c2.tasks[0].cron: invalid cron \"61 * * * *\": minute value 61 is out of range 0-59",
            "connections.c2.tasks[1].type: handler \"ok\" does not run \"user_ingestion_full\"",
            "connections.c2.tasks[1].every: invalid duration \"soon\"",
        ]
        for prefix in expected {
            #expect(found.contains { $0.hasPrefix(prefix) }, "missing: \(prefix)\nin: \(found.joined(separator: "\n"))")
        }
        #expect(found.count == expected.count, "\(found.joined(separator: "\n"))")
    }

    @Test func syntaxErrorNamesLineAndColumn() {
        let found = problems("{\n  \"version\": 1,\n  \"handlers\": {\n}")
        #expect(found == ["invalid JSON: line 4, column 2: unexpected end of input, expected ',' or '}'"])
    }

    @Test func duplicateIdsAreCaught() {
        let found = problems(#"{"version": 1, "handlers": {"a": {"command": ["/bin/true"], "taskTypes": ["x"]}}, "connections": {"c": {"handler": "a"}, "c": {"handler": "a"}}}"#)
        #expect(found.count == 1)
        #expect(found.first?.contains("duplicate key \"c\"") == true)
    }

    @Test func executablesAreCheckedByValidate() {
        let dir = TemporaryDirectory()
        _ = dir.write("agents/plain.sh", "#!/bin/sh\n")
        _ = dir.write("agents/bad.sh", "#!/nonexistent/python\n", executable: true)
        let file = dir.write(
            "plugins.json",
            #"{"version": 1, "handlers": {"missing": {"command": ["agents/none.sh"], "taskTypes": ["x"]}, "plain": {"command": ["agents/plain.sh"], "taskTypes": ["x"]}, "bad": {"command": ["agents/bad.sh"], "taskTypes": ["x"]}, "path": {"command": ["no-such-command-anywhere"], "taskTypes": ["x"]}}}"#)
        do {
            _ = try RegistryLoader.load(file: file, options: .init(checkExecutables: true))
            Issue.record("accepted missing executables")
        } catch {
            let text = error.description
            #expect(text.contains("handlers.missing.command[0]: \(dir.path)/agents/none.sh does not exist"))
            #expect(text.contains("handlers.plain.command[0]: \(dir.path)/agents/plain.sh is not executable"))
            #expect(text.contains("handlers.bad.command[0]: \(dir.path)/agents/bad.sh names the interpreter /nonexistent/python in its #! line, which does not exist"))
            #expect(text.contains("handlers.path.command[0]: \"no-such-command-anywhere\" was not found in PATH"))
        }
    }

    @Test func fileLevelProblems() {
        let dir = TemporaryDirectory()
        for (path, message) in [(dir.path, "is a directory"), ("\(dir.path)/absent.json", "no such file")] {
            do {
                _ = try RegistryLoader.load(file: path)
                Issue.record("loaded \(path)")
            } catch {
                #expect(error.problems.first?.message.contains(message) == true)
            }
        }
    }
}

@Suite struct ScheduleTests {
    let utc = TimeZone(identifier: "UTC")!
    func date(_ text: String) -> Date { Timestamp.parse(text)! }

    @Test func durations() {
        #expect(DurationText.seconds("90s") == 90)
        #expect(DurationText.seconds("30m") == 1800)
        #expect(DurationText.seconds("2h") == 7200)
        #expect(DurationText.seconds("1d") == 86400)
        #expect(DurationText.seconds("1h30m") == 5400)
        for bad in ["", "30", "m", "1x", "-1s", "1.5h"] { #expect(DurationText.seconds(bad) == nil, "\(bad)") }
        #expect(DurationText.format(seconds: 5400) == "1h30m")
    }

    @Test(arguments: [
        ("*/15 * * * *", "2026-01-01T10:07:00Z", "2026-01-01T10:15:00Z"),
        ("0 3 * * 0", "2026-11-23T12:00:00Z", "2026-11-29T03:00:00Z"),
        ("0 3 * * sun", "2026-11-23T12:00:00Z", "2026-11-29T03:00:00Z"),
        ("0 3 * * 7", "2026-11-23T12:00:00Z", "2026-11-29T03:00:00Z"),
        ("30 9 1-7 * mon", "2026-11-23T12:00:00Z", "2026-11-30T09:30:00Z"),  // Vixie: day-of-month OR day-of-week
        ("0 0 29 feb *", "2026-03-01T00:00:00Z", "2028-02-29T00:00:00Z"),
        ("5,10 1-3/2 * jan-mar *", "2026-01-01T01:07:00Z", "2026-01-01T01:10:00Z"),
        ("@hourly", "2026-01-01T10:00:00Z", "2026-01-01T11:00:00Z"),
        ("@daily", "2026-01-01T10:00:00Z", "2026-01-02T00:00:00Z"),
        ("@weekly", "2026-11-23T10:00:00Z", "2026-11-29T00:00:00Z"),
        ("@monthly", "2026-11-23T10:00:00Z", "2026-12-01T00:00:00Z"),
        ("0 12 * * 1-5", "2026-11-27T13:00:00Z", "2026-11-30T12:00:00Z"),
    ])
    func cronNextFire(expression: String, after: String, expected: String) throws {
        let cron = try CronExpression(expression)
        #expect(cron.nextFire(after: date(after), in: utc) == date(expected))
    }

    @Test(arguments: ["* * * *", "60 * * * *", "* 24 * * *", "* * 0 * *", "* * * 13 *", "* * * * 8", "*/0 * * * *", "5-1 * * * *", "@sometimes", "a b c d e"])
    func cronRejects(expression: String) {
        #expect(throws: CronExpression.ParseError.self) { try CronExpression(expression) }
    }

    @Test func dstGapRunsAfterTheGapAndRepeatRunsOnce() throws {
        let berlin = TimeZone(identifier: "Europe/Berlin")!
        let cron = try CronExpression("30 2 * * *")
        // 2026-03-29: clocks jump 02:00 → 03:00 CET→CEST; 02:30 does not exist.
        let gap = cron.nextFire(after: date("2026-03-28T23:00:00Z"), in: berlin)
        #expect(gap == date("2026-03-29T01:30:00Z"), "02:30 local runs at 03:30 CEST (01:30 UTC), right after the gap")
        // 2026-10-25: 02:30 happens twice; it runs at the first, then next day.
        let first = try #require(cron.nextFire(after: date("2026-10-24T22:00:00Z"), in: berlin))
        #expect(first == date("2026-10-25T00:30:00Z"))
        #expect(cron.nextFire(after: first, in: berlin) == date("2026-10-26T01:30:00Z"))
    }

    @Test func missedSlotsMakeOneCatchUpRun() {
        let every = Schedule.every(seconds: 60)
        let previous = date("2026-01-01T10:00:00Z")
        let now = date("2026-01-01T10:30:30Z")
        // The caller runs once now; the next tick is the next slot after now, not 30 catch-ups.
        #expect(every.nextDue(previousDue: previous, now: now) == date("2026-01-01T10:31:00Z"))
        let cron = Schedule.cron(try! CronExpression("*/10 * * * *"), utc)
        #expect(cron.nextDue(previousDue: previous, now: now) == date("2026-01-01T10:40:00Z"))
        #expect(every.firstDue(now: now) == now)
    }

    @Test func configHashIsLowercaseHexSHA1() {
        // FIPS 180 vectors. Stored hashes of earlier hosts must compare equal, or every
        // connection would look changed (UPDATED) after an upgrade.
        #expect(SHA1.hex("abc") == "a9993e364706816aba3e25717850c26c9cd0d89d")
        #expect(SHA1.hex("") == "da39a3ee5e6b4b0d3255bfef95601890afd80709")
    }

    @Test func uuid5MatchesTheRFCVector() {
        // Python: uuid.uuid5(uuid.NAMESPACE_URL, "https://example.com")
        #expect(DeterministicID.uuid5(namespace: DeterministicID.urlNamespace, name: "https://example.com").uuidString.lowercased() == "4fd35a71-71ef-5a55-a9d9-aa75c889a6d0")
        let a = DeterministicID.childTaskId(appId: "app", scanId: "s", parentTaskId: "p", key: "folder:a")
        #expect(a == DeterministicID.childTaskId(appId: "app", scanId: "s", parentTaskId: "p", key: "folder:a"))
        #expect(a != DeterministicID.childTaskId(appId: "app", scanId: "s2", parentTaskId: "p", key: "folder:a"))
    }

    @Test func rootAndChildIdsAreTheOnesEarlierHostsStored() {
        // Python: uuid.uuid5(uuid.uuid5(uuid.NAMESPACE_URL, "connector-host:<appId>"), name). The
        // stored schedules and tasks of earlier hosts carry these; two appIds in turn check that
        // the namespace kept from the last call is not reused for another.
        for _ in 0..<2 {
            #expect(DeterministicID.childTaskId(appId: "app", scanId: "s", parentTaskId: "p", key: "folder:a") == "88d38559-bdc5-55c9-bd9d-46d2981447e9")
            #expect(DeterministicID.rootTaskId(appId: "other", connectionId: "c1", taskType: "t") == "697b9a56-1303-5260-9e83-3cb7f0937f7e")
        }
    }

    @Test func randomIdsAreVersion7AndSortByTheTimeTheyWereMade() throws {
        let before = UInt64(Date().timeIntervalSince1970 * 1000)
        let first = DeterministicID.random()
        usleep(2_000)
        let later = (0..<100).map { _ in DeterministicID.random() }
        let after = UInt64(Date().timeIntervalSince1970 * 1000)
        for id in [first] + later {
            let uuid = try #require(UUID(uuidString: id), "\(id) is not a UUID")
            #expect(id == uuid.uuidString.lowercased())
            #expect(uuid.uuid.6 >> 4 == 7, "version nibble of \(id)")
            #expect(uuid.uuid.8 >> 6 == 0b10, "variant bits of \(id)")
            let hex = id.replacingOccurrences(of: "-", with: "").prefix(12)
            let milliseconds = try #require(UInt64(hex, radix: 16))
            #expect(milliseconds >= before && milliseconds <= after)
        }
        #expect(later.allSatisfy { $0 > first })
        #expect(Set(later).count == later.count)
    }

    /// The random part of an id comes from a pool refilled a page at a time (`RandomPool`): ids
    /// made on many threads across many refills share no random bytes, and every random bit is
    /// set in about half of them (a refill that failed to fill, or a slice handed out twice,
    /// would show here).
    @Test func randomIdsFromManyThreadsShareNoRandomBits() async {
        let perThread = 2_000
        let ids = await withTaskGroup(of: [String].self) { group in
            for _ in 0..<8 { group.addTask { (0..<perThread).map { _ in DeterministicID.random() } } }
            return await group.reduce(into: [String]()) { $0 += $1 }
        }
        #expect(ids.count == 8 * perThread)
        // The 74 random bits: after the 12 hex digits of milliseconds and the version digit.
        let randomParts = ids.map { id -> [UInt8] in
            let hex = Array(id.replacingOccurrences(of: "-", with: "").utf8)
            return Array(hex[13...])
        }
        #expect(Set(randomParts).count == ids.count, "two ids drew the same random bytes")
        var ones = [Int](repeating: 0, count: 19 * 4)
        for part in randomParts {
            for (digit, character) in part.enumerated() {
                let value = Int(String(UnicodeScalar(character)), radix: 16) ?? 0
                for bit in 0..<4 where value & (1 << bit) != 0 { ones[digit * 4 + bit] += 1 }
            }
        }
        // Digit 3 of the random part holds the variant's two fixed bits (10xx).
        let fixed: Set<Int> = [3 * 4 + 3, 3 * 4 + 2]
        let skewed = ones.indices.filter { !fixed.contains($0) && abs(Double(ones[$0]) / Double(ids.count) - 0.5) > 0.05 }
        #expect(skewed == [], "random bits set in far more or far fewer than half of the ids")
    }
}
