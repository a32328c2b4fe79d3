import Foundation
import Testing

@testable import ConnectorHost

extension HostProcessTests {
    /// The command-line contract users' scripts depend on: exit codes, `--json` shapes, help and
    /// usage conventions. Each test runs the real binary.
    @Suite struct CLITests {
        static let incremental: JSONValue = [["type": "entity_ingestion_incremental", "every": "1h"]]

        @Test func helpGoesToStdoutWithExit0AndUsageErrorsExit64() {
            let h = HostFixture()
            let help = h.run(["--help"])
            #expect(help.status == 0)
            for name in ["validate", "exec", "run", "daemon", "trigger", "checkpoint", "resume", "schedule-unit", "runs", "scans", "status", "alerts", "prune"] {
                #expect(help.stdout.contains("  \(name) "), "overview lists \(name)")
            }
            let runHelp = h.run(["run", "--help"])
            #expect(runHelp.status == 0)
            #expect(runHelp.stdout.contains("--max-wait <seconds>"))
            let typo = h.run(["rnu"])
            #expect(typo.status == 64)
            #expect(typo.stderr.contains("did you mean 'run'?"), "\(typo.stderr)")
            let badFlag = h.run(["run", "--bogus"])
            #expect(badFlag.status == 64)
            #expect(badFlag.stdout.isEmpty)
            #expect(h.run(["run", "--max-wait", "soon"]).status == 64)
        }

        @Test func validateReportsEveryProblemWithFileAndPathAndExits78() throws {
            let h = HostFixture()
            let bad: JSONValue = [
                "version": 1,
                "handlers": ["folder-sync": ["command": ["/bin/true"], "taskTypes": ["entity_ingestion_full"], "timeoutSecond": 5]],
                "connections": ["docs": ["handler": "foldr-sync", "tasks": [["type": "entity_ingestion_full", "every": "soon"]]]],
            ]
            h.writeConfig(bad)
            let result = h.run(["validate"])
            #expect(result.status == 78)
            #expect(result.stderr.contains("plugins.json: connections.docs.handler: unknown handler \"foldr-sync\" (did you mean \"folder-sync\"?)"), "\(result.stderr)")
            #expect(result.stderr.contains("handlers.folder-sync.timeoutSecond"), "unknown key named with its path")
            #expect(result.stderr.contains("did you mean \"timeoutSeconds\"?"))
            #expect(result.stderr.contains("connections.docs.tasks[0].every"), "\(result.stderr)")
            // run refuses the same config with the same code and writes no state.
            #expect(h.run(["run"]).status == 78)
            #expect(!FileManager.default.fileExists(atPath: h.state))
        }

        @Test func validateChecksExecutablesAndPassesTheSample() {
            let h = HostFixture()
            let valid = h.run(["validate"])
            #expect(valid.status == 0, "\(valid.stderr)")
            let missing = HostFixture(handler: ["command": ["agents/nope.sh"]])
            let result = missing.run(["validate"])
            #expect(result.status == 78)
            #expect(result.stderr.contains("handlers.scripted.command[0]"), "\(result.stderr)")
            // run, daemon and exec refuse it too, before the state exists.
            for command in [["run"], ["daemon"], ["exec", "c"]] {
                let refused = missing.run(command)
                #expect(refused.status == 78, "\(command): \(refused.stderr)")
                #expect(refused.stderr.contains("handlers.scripted.command[0]"), "\(refused.stderr)")
            }
            #expect(!FileManager.default.fileExists(atPath: missing.state))
            let sample = h.run(["validate", "--config", "\(Fixtures.packageRoot)/plugins.json"])
            #expect(sample.status == 0, "the shipped plugins.json is valid: \(sample.stderr)")
        }

        @Test func execPrintsTheRecordAsJSONAndRecordsItAsManual() throws {
            let host = HostFixture()
            let h = HostFixture(connections: ["c": (.object(["log": .string(host.log)]), Self.incremental)])
            let result = h.run(["exec", "c", "--json"])
            #expect(result.status == 0, "\(result.stderr)")
            let record = try JSONParser.parse(result.stdout)
            for field in [
                "taskId", "taskExecutionId", "scanId", "parentTaskId", "connectionId", "handler", "type", "status", "failureReason", "exitCode", "signal",
                "timedOut", "startedAt", "durationMs", "attempt", "result", "error", "stderrTail",
            ] {
                #expect(record.objectValue?[field] != nil, "the record has \(field)")
            }
            #expect(record["status"] == "success")
            #expect(record["connectionId"] == "c")
            #expect(record["exitCode"] == 0)
            #expect(record["result"] == ["key": "root"])
            let stored = try #require(try h.store().recentExecutions(limit: 1).first)
            #expect(stored.trigger == .manual)
            #expect(stored.taskExecutionId == record["taskExecutionId"]?.stringValue)

            let failing = HostFixture(connections: ["c": (["outcomes": ["root": ["ENTITY_NOT_FOUND"]]], Self.incremental)])
            let failed = failing.run(["exec", "c", "--json"])
            #expect(failed.status == 1)
            #expect(try JSONParser.parse(failed.stdout)["failureReason"] == "ENTITY_NOT_FOUND")
            let unknown = h.run(["exec", "d"])
            #expect(unknown.status == 64)
            #expect(unknown.stderr.contains("no connection \"d\""))
        }

        @Test func environmentOptionRunsOnlyThatEnvironment() throws {
            let host = HostFixture()
            let h = HostFixture(connections: ["p": (.object(["log": .string(host.log)]), Self.incremental), "s": (.object(["log": .string(host.log)]), Self.incremental)])
            var root = try JSONParser.parse(String(contentsOfFile: h.config, encoding: .utf8)).objectValue!
            var connections = root["connections"]!.objectValue!
            var p = connections["p"]!.objectValue!
            p["environment"] = "prod"
            connections["p"] = .object(p)
            root["connections"] = .object(connections)
            h.writeConfig(.object(root))
            #expect(h.run(["run", "--environment", "prod"]).status == 0)
            #expect(host.executions().map { $0["connection"] } == ["p"])
            #expect(h.run(["run", "--environment", "default"]).status == 0)
            #expect(host.executions().map { $0["connection"] } == ["p", "s"], "a connection without environment is in \"default\"")
        }

        @Test func scheduleUnitPrintsSystemdAndCronForThisConfig() {
            let h = HostFixture()
            let systemd = h.run(["schedule-unit", "--systemd"])
            #expect(systemd.status == 0)
            #expect(systemd.stdout.contains("[Timer]"))
            #expect(systemd.stdout.contains("Persistent=true"))
            #expect(systemd.stdout.contains("run --config \(h.config)"), "\(systemd.stdout)")
            #expect(systemd.stdout.contains("SuccessExitStatus=75"))
            let cron = h.run(["schedule-unit", "--cron"])
            #expect(cron.status == 0)
            #expect(cron.stdout.contains("* * * * *"))
            #expect(cron.stdout.contains("run --config \(h.config)"))
            #expect(h.run(["schedule-unit"]).status == 64, "one of --systemd or --cron is required")
        }

        @Test func daemonReloadsTheConfigOnSIGHUP() throws {
            let host = HostFixture()
            let h = HostFixture(connections: ["a": (.object(["log": .string(host.log)]), Self.incremental)])
            let daemon = h.start(["daemon"])
            #expect(h.eventually { host.executions().count == 1 })
            var root = try JSONParser.parse(String(contentsOfFile: h.config, encoding: .utf8)).objectValue!
            var connections = root["connections"]!.objectValue!
            connections["b"] = connections["a"]
            root["connections"] = .object(connections)
            h.writeConfig(.object(root))
            kill(daemon.pid, SIGHUP)
            #expect(h.eventually { host.executions().count == 2 }, "the reloaded connection b runs without a restart")
            // A broken config on reload is refused and the running one kept.
            try "{ not json".write(toFile: h.config, atomically: true, encoding: .utf8)
            kill(daemon.pid, SIGHUP)
            #expect(h.eventually { ((try? String(contentsOfFile: daemon.stderrPath, encoding: .utf8)) ?? "").contains("reload failed, keeping the running config") })
            kill(daemon.pid, SIGTERM)
            let result = daemon.wait()
            #expect(result.status == 0, "\(result.stderr)")
            #expect(host.executions().map { $0["connection"] } == ["a", "b"])
            #expect(result.stderr.contains("b: connection CREATED"))
        }
    }

    /// `run`'s progress line, on a real pseudo-terminal (util-linux `script`) and off one.
    @Suite struct ProgressLineTests {
        @Test(.enabled(if: FileManager.default.isExecutableFile(atPath: "/usr/bin/script"))) func liveLineOnATerminalOnlySummaryOffOne() throws {
            let host = HostFixture()
            let h = HostFixture(connections: ["c": (["log": .string(host.log), "children": ["root": ["a", "b"]]], CLITests.incremental)])
            let command = "\(HostFixture.binary) run --config \(h.config)"
            let pty = h.run(["-qec", command, "/dev/null"], executable: "/usr/bin/script")
            #expect(pty.status == 0, "\(pty.stderr)")
            #expect(pty.stdout.contains("\r\u{1B}[Krunning "), "redrawn in place: \(pty.stdout.debugDescription)")
            #expect(pty.stdout.contains("done 3 · failed 0"))
            #expect(pty.stdout.contains("3 execution(s): 3 succeeded"))

            #expect(h.run(["trigger", "c"]).status == 0)
            let plain = h.run(["run"])
            #expect(!plain.stdout.contains("\u{1B}["), "no control codes when stdout is a file")
            #expect(!plain.stdout.contains("progress:"), "a pass shorter than 10 s prints only its summary")
        }
    }
}
