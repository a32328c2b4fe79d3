import Foundation
import Synchronization
import Testing

@testable import ConnectorHost

/// The runner against real agent processes that behave well and badly.
@Suite struct AgentRunnerTests {
    func assertNothingLeft(_ execution: AgentExecution, state: TemporaryDirectory? = nil, sourceLocation: SourceLocation = #_sourceLocation) {
        #expect(processesOfRun(execution.record.taskExecutionId).isEmpty, "processes of the run remain", sourceLocation: sourceLocation)
        if let pid = execution.process?.pid {
            #expect(ProcFS.stat(pid) == nil, "the agent \(pid) was not reaped", sourceLocation: sourceLocation)
        }
        if let state {
            let leftovers = (try? FileManager.default.contentsOfDirectory(atPath: "\(state.path)/payloads")) ?? []
            #expect(leftovers.isEmpty, "payload files remain: \(leftovers)", sourceLocation: sourceLocation)
        }
    }

    @Test func successWithLegacyResult() async {
        let state = TemporaryDirectory()
        let e = await runAgent(makeHandler([Fixtures.agent("succeed.sh")]), state: state)
        #expect(e.record.status == .success)
        #expect(e.record.failureReason == nil)
        #expect(e.record.exitCode == 0)
        #expect(e.record.result?["items"] == .number("3"))
        #expect(e.record.result?["message"] == "synced")
        assertNothingLeft(e, state: state)
    }

    @Test(arguments: FailureReason.allCases)
    func agentReportedFailureReasons(reason: FailureReason) async {
        let e = await runAgent(makeHandler([Fixtures.agent("report-failure.sh")], env: ["REASON": reason.rawValue]))
        #expect(e.record.status == .failure)
        #expect(e.record.failureReason == reason)
        #expect(e.record.error == "upstream said no")
        #expect(e.verdict.retryAfterSeconds == 7)
        #expect(e.report.logs == [.init(level: "warning", message: "about to fail")])
    }

    @Test func unknownFailureReasonIsNonRetryableAndKeptVerbatim() async {
        let e = await runAgent(makeHandler([Fixtures.agent("report-failure.sh")], env: ["REASON": "TEAPOT"]))
        #expect(e.record.failureReason == .nonRetryableError)
        #expect(e.record.error?.contains("TEAPOT") == true)
    }

    @Test(arguments: [
        (Int32(75), FailureReason.retryableError), (77, .unauthorized), (78, .nonRetryableError), (1, .retryableError),
        (126, .nonRetryableError), (127, .nonRetryableError), (42, .retryableError),
    ])
    func exitCodesMapToReasons(code: Int32, reason: FailureReason) async {
        let e = await runAgent(makeHandler([Fixtures.agent("exit-code.sh")], env: ["CODE": "\(code)"]))
        #expect(e.record.status == .failure)
        #expect(e.record.failureReason == reason)
        #expect(e.record.exitCode == Int(code))
        #expect(e.record.error == "exited with code \(code): exiting with \(code)")
        #expect(e.record.stderrTail == "exiting with \(code)\n")
    }

    @Test func handlerExitCodesOverrideDefaults() async {
        let overrides: [Int32: ReportedOutcome] = [3: .failure(.rateLimited), 4: .success, 75: .failure(.entityNotFound)]
        let three = await runAgent(makeHandler([Fixtures.agent("exit-code.sh")], env: ["CODE": "3"], exitCodes: overrides))
        #expect(three.record.failureReason == .rateLimited)
        let four = await runAgent(makeHandler([Fixtures.agent("exit-code.sh")], env: ["CODE": "4"], exitCodes: overrides))
        #expect(four.record.status == .success)
        let seventyFive = await runAgent(makeHandler([Fixtures.agent("exit-code.sh")], env: ["CODE": "75"], exitCodes: overrides))
        #expect(seventyFive.record.failureReason == .entityNotFound)
    }

    @Test func crashBySignalIsRetryableAndNamed() async {
        let e = await runAgent(makeHandler([Fixtures.agent("crash-signal.sh")], env: ["SIG": "SEGV"]))
        #expect(e.record.failureReason == .retryableError)
        #expect(e.record.signal == "SIGSEGV")
        #expect(e.record.exitCode == nil)
        #expect(e.record.error == "killed by SIGSEGV")
        let killed = await runAgent(makeHandler([Fixtures.agent("crash-signal.sh")], env: ["SIG": "KILL"]))
        #expect(killed.record.signal == "SIGKILL")
        #expect(killed.record.error == "killed by SIGKILL (possibly out of memory)")
    }

    @Test func hangingAgentTimesOut() async {
        let state = TemporaryDirectory()
        let (e, seconds) = await measure { await runAgent(makeHandler([Fixtures.agent("hang.sh")], timeout: 1, grace: 5), state: state) }
        #expect(e.record.status == .failure)
        #expect(e.record.failureReason == .retryableError)
        #expect(e.record.timedOut)
        #expect(e.record.error == "timed out after 1s")
        #expect(e.record.signal == "SIGTERM")
        #expect(seconds < 5, "a process that obeys SIGTERM is not kept for the grace period")
        assertNothingLeft(e, state: state)
    }

    @Test func onlyAnAgentStillRunningAfterTheNoticeDelayIsAnnounced() async {
        let runner = AgentRunner(appId: "test-app", stateDirectory: TemporaryDirectory().path, logger: .silent)
        let notices = Mutex<[(SpawnedProcess, alive: Bool)]>([])
        func run(_ agent: String, timeout: Double) async -> AgentExecution {
            await runner.run(
                handler: makeHandler([Fixtures.agent(agent)], timeout: timeout, grace: 0), connection: makeConnection(handler: "test-handler"),
                context: makeContext(), configDirectory: Fixtures.directory
            ) { process in
                notices.withLock { $0.append((process, ProcFS.isSameProcess(process.pid, startTicks: process.startTicks))) }
            }
        }
        // Done before the delay: no spawn record was ever asked for.
        let quick = await run("succeed.sh", timeout: 30)
        #expect(quick.record.status == .success)
        #expect(notices.withLock { $0.isEmpty }, "an agent that ended within \(AgentRunner.spawnNoticeDelaySeconds)s was announced")
        // Still running at the delay: announced once, as the live child it is.
        let slow = await run("hang.sh", timeout: 1)
        #expect(slow.record.timedOut)
        let seen = notices.withLock { $0 }
        #expect(seen.count == 1)
        #expect(seen.first?.0.pid == slow.process?.pid)
        #expect(seen.first?.alive == true, "the start time read at the notice identifies the running agent")
    }

    @Test func agentIgnoringSigtermIsKilledAfterGrace() async {
        let (e, seconds) = await measure { await runAgent(makeHandler([Fixtures.agent("ignore-term.sh")], timeout: 0.5, grace: 1)) }
        #expect(e.record.timedOut)
        #expect(e.record.signal == "SIGKILL")
        #expect(seconds >= 1.4, "SIGKILL must wait for the grace period")
        #expect(seconds < 10)
        assertNothingLeft(e)
    }

    @Test func stdoutFloodIsCutAtTheCap() async {
        let cap = 1 << 20
        let (e, seconds) = await measure { await runAgent(makeHandler([Fixtures.agent("flood-stdout.py")], cap: cap)) }
        #expect(e.record.status == .failure)
        #expect(e.record.failureReason == .nonRetryableError)
        #expect(e.record.error == "stdout exceeded maxOutputBytes (\(cap) bytes); the agent was killed")
        #expect(seconds < 10)
        assertNothingLeft(e)
    }

    @Test func hundredMegabytesUnderALargeCapIsReadWithoutDeadlock() async {
        // 100 MB of 'x' is not the protocol, but it must be read to the end without a deadlock.
        let e = await runAgent(makeHandler([Fixtures.agent("flood-stdout.py")], cap: 128 << 20))
        #expect(e.record.failureReason == .nonRetryableError)
        #expect(e.record.error?.hasPrefix("stdout is not JSON") == true || e.record.error?.contains("line 1 is not JSON") == true)
        #expect(e.record.exitCode == 0)
    }

    @Test func aResultLargerThanTheInMemoryPartComesBackWhole() async throws {
        // About 3 MiB: past 1 MiB the host keeps stdout in an unlinked file beside the payload.
        let state = TemporaryDirectory()
        let e = await runAgent(makeHandler([Fixtures.agent("big-result.py")]), state: state)
        #expect(e.record.status == .success, "\(e.record.error ?? "")")
        let blob = try #require(e.record.result?["blob"]?.stringValue)
        #expect(blob.utf8.count == 3_200_000)
        #expect(blob.hasPrefix("0000000,0000001,") && blob.hasSuffix("0399999,"))
        #expect(e.record.result?["end"] == "here")
        assertNothingLeft(e, state: state)
    }

    @Test func bothPipesFloodedAtOnce() async {
        let e = await runAgent(makeHandler([Fixtures.agent("flood-both.py")]))
        #expect(e.record.status == .success, "\(e.record.error ?? "")")
        #expect(e.record.result == ["lines": 10240])
        #expect(e.record.stderrTail.utf8.count == 64 * 1024)
        #expect(e.report.progress?.done == 10235)
    }

    @Test func garbageOnStdoutNamesTheLine() async {
        let e = await runAgent(makeHandler([Fixtures.agent("garbage.sh")]))
        #expect(e.record.status == .failure)
        #expect(e.record.failureReason == .nonRetryableError)
        #expect(e.record.error?.hasPrefix("stdout line 2 is not JSON") == true, "\(e.record.error ?? "")")
        #expect(e.record.error?.contains("hello, this is not JSON") == true)
    }

    @Test func prettyPrintedDocumentIsTheResult() async {
        let e = await runAgent(makeHandler([Fixtures.agent("pretty-json.sh")]))
        #expect(e.record.status == .success)
        #expect(e.record.result?["nested"]?["count"] == .number("12345678901234567"))
    }

    @Test func jsonLinesWithFinalResult() async {
        let e = await runAgent(makeHandler([Fixtures.agent("json-lines.sh")]))
        #expect(e.record.status == .success, "the last result wins")
        #expect(e.record.result == ["done": true])
        #expect(e.report.stats == .init(records: 15, bytes: 100, schema: "v1"))
        #expect(e.report.checkpoint == ["cursor": 42])
        #expect(e.report.children.count == 1)
        #expect(e.report.children.first?.message["key"] == "folder:a")
        #expect(e.report.progress == .init(message: "half", done: 1, total: 2))
    }

    @Test func grandchildHoldingThePipesDoesNotHangTheHost() async {
        let (e, seconds) = await measure { await runAgent(makeHandler([Fixtures.agent("grandchild.sh")])) }
        #expect(e.record.status == .success)
        #expect(seconds < 5)
        assertNothingLeft(e)
    }

    @Test func descendantsThatLeftTheGroupAreKilledAndReaped() async throws {
        let dir = TemporaryDirectory()
        let pidsFile = "\(dir.path)/pids"
        let (e, seconds) = await measure { await runAgent(makeHandler([Fixtures.agent("escape.sh")], env: ["PIDS_FILE": pidsFile])) }
        #expect(e.record.status == .success)
        #expect(seconds < 5)
        assertNothingLeft(e)
        let pids = try String(contentsOfFile: pidsFile, encoding: .utf8).split(separator: "\n").compactMap { Int32($0) }
        // Two pids are written by the agent's own shell before it exits; the two innermost ones
        // may be killed before they write theirs.
        #expect(pids.count >= 2, "the fixture recorded its escaped descendants: \(pids)")
        // Gone entirely: killed and reaped, not left as zombies of the host (the subreaper).
        for pid in pids { #expect(ProcFS.stat(pid) == nil, "descendant \(pid) was not reaped") }
    }

    @Test func agentClosingItsPipesIsWaitedForByExit() async {
        let (e, seconds) = await measure { await runAgent(makeHandler([Fixtures.agent("closes-stdout.sh")])) }
        #expect(e.record.exitCode == 3, "exit is taken from the process, not from EOF")
        #expect(seconds >= 0.9)
        assertNothingLeft(e)
    }

    /// The agent starts as posix_spawn with POSIX_SPAWN_SETSIGDEF would start it, whatever the
    /// host itself ignores, blocks or holds open: no signal ignored or blocked, its own process
    /// group, none of the host's descriptors beyond 0, 1 and 2 (the spawn is the host's own).
    @Test func theAgentStartsWithDefaultSignalsInItsOwnGroupAndNoneOfTheHostsDescriptors() async throws {
        let directory = TemporaryDirectory()
        let marker = directory.path + "/host-descriptor-marker"
        #expect(FileManager.default.createFile(atPath: marker, contents: Data()))
        // Opened without close-on-exec, as careless code in the host (or a library) might.
        let leaked = open(marker, O_RDONLY)
        #expect(leaked >= 0)
        defer { close(leaked) }
        // Ignored in the host (as main.swift ignores SIGPIPE and SIGXFSZ): SIG_IGN survives exec
        // unless the spawn resets it.
        signal(SIGPIPE, SIG_IGN)
        let previous = signal(SIGUSR2, SIG_IGN)
        defer { signal(SIGUSR2, previous) }
        let e = await runAgent(makeHandler([Fixtures.agent("process-state.sh")]))
        #expect(e.record.status == .success, "\(e.record.error ?? "")")
        #expect(e.record.result?["ignored"] == "0000000000000000")
        #expect(e.record.result?["blocked"] == "0000000000000000")
        #expect(e.record.result?["leadsGroup"]?.boolValue == true)
        let descriptors = try #require(e.record.result?["descriptors"]?.stringValue)
        #expect(!descriptors.contains("host-descriptor-marker"), "\(descriptors)")
        assertNothingLeft(e)
    }

    @Test func missingExecutable() async {
        let path = Fixtures.agent("no-such-agent.sh")
        let e = await runAgent(makeHandler([path]))
        #expect(e.record.failureReason == .nonRetryableError)
        #expect(e.record.error == "could not start \(path): the file does not exist")
    }

    @Test func fileWithoutExecutePermission() async {
        let path = Fixtures.agent("not-executable.sh")
        let e = await runAgent(makeHandler([path]))
        #expect(e.record.failureReason == .nonRetryableError)
        #expect(e.record.error?.contains("not executable (chmod +x \(path))") == true, "\(e.record.error ?? "")")
    }

    @Test func badShebangNamesTheInterpreter() async {
        let path = Fixtures.agent("bad-shebang.sh")
        let e = await runAgent(makeHandler([path]))
        #expect(e.record.failureReason == .nonRetryableError)
        #expect(e.record.error == "could not start \(path): bad interpreter /nonexistent/interpreter (named in its #! line): no such file")
    }

    @Test func payloadFieldsSecretsAndEnvironment() async throws {
        let state = TemporaryDirectory()
        let secretFile = state.write("key", "file-secret-value\n")
        let connection = makeConnection(
            fields: JSONObject([("root", "sample")]), secrets: ["API_TOKEN": .environment("TEST_TOKEN_SOURCE"), "SIGNING_KEY": .file(secretFile)])
        var context = makeContext()
        context.attempt = 2
        context.taskMetadata = ["page": 3]
        let environment = ["TEST_TOKEN_SOURCE": "s3cr3t-token-value", "PATH": "/usr/bin:/bin", "HOME": "/root", "UNRELATED": "x"]
        let e = await runAgent(makeHandler([Fixtures.agent("echo-payload.py")], env: ["LOG_LEVEL": "info"]), connection: connection, context: context, environment: environment, state: state)
        #expect(e.record.status == .success, "\(e.record.error ?? "") \(e.record.stderrTail)")
        let result = try #require(e.record.result)
        let payload = try #require(result["payload"])
        #expect(payload["taskId"] == .string(context.taskId))
        #expect(payload["taskExecutionId"] == .string(context.taskExecutionId))
        #expect(payload["scanId"] == .string(context.scanId))
        #expect(payload["parentTaskId"] == .null)
        #expect(payload["connectionId"] == "conn")
        #expect(payload["appId"] == "test-app")
        #expect(payload["extensionKey"] == "test-handler")
        #expect(payload["environmentId"] == "test")
        #expect(payload["connectorFormFields"] == ["root": "sample"])
        #expect(payload["taskDescription"] == ["taskType": "entity_ingestion_full", "isRootTask": true, "trigger": "manual"])
        #expect(payload["taskMetadata"] == ["page": 3])
        #expect(payload["attempt"] == 2)
        #expect(payload["payloadVersion"] == 1)
        #expect(payload["deadline"]?.stringValue.flatMap(Timestamp.parse) != nil)
        #expect(result["fileMode"] == "0o600")
        #expect(result["dirMode"] == "0o700")
        #expect(result["secretInEnv"] == true)
        #expect(result["secretInPayload"] == false)
        // The agent echoed the secret on stdout and stderr: the record holds it masked.
        #expect(result["echo"] == "the token is ***")
        #expect(e.record.stderrTail == "token is ***\n")
        let keys = (result["envKeys"]?.arrayValue ?? []).compactMap { $0.stringValue }
        #expect(keys.contains("API_TOKEN") && keys.contains("SIGNING_KEY") && keys.contains("LOG_LEVEL"))
        #expect(!keys.contains("UNRELATED"), "the agent's environment is minimal")
        #expect(keys.contains("CONNECTOR_HOST_TASK_EXECUTION_ID"))
        #expect(result["cwd"] == "/tmp")
        let payloadPath = try #require(result["payloadPath"]?.stringValue)
        #expect(!FileManager.default.fileExists(atPath: payloadPath), "the payload file is removed after the run")
        let leftovers = (try? FileManager.default.contentsOfDirectory(atPath: (payloadPath as NSString).deletingLastPathComponent)) ?? []
        #expect(leftovers.isEmpty, "nothing of the execution is left in the payload directory: \(leftovers)")
    }

    @Test func unresolvableSecretFailsWithoutStarting() async {
        let connection = makeConnection(secrets: ["API_TOKEN": .environment("DEFINITELY_NOT_SET_ANYWHERE")])
        let e = await runAgent(makeHandler([Fixtures.agent("succeed.sh")]), connection: connection, environment: ["PATH": "/usr/bin:/bin"])
        #expect(e.record.failureReason == .nonRetryableError)
        #expect(e.record.error == "secret API_TOKEN: environment variable DEFINITELY_NOT_SET_ANYWHERE is not set")
        #expect(e.process == nil)
    }

    @Test(arguments: [("checkpoint", "its checkpoint"), ("child", "the child on stdout line 3")])
    func secretKeptVerbatimIsRefused(place: String, named: String) async {
        let connection = makeConnection(secrets: ["API_TOKEN": .environment("TEST_TOKEN_SOURCE")])
        let handler = makeHandler([Fixtures.agent("secret-verbatim.sh")], env: ["WHERE": place])
        let e = await runAgent(handler, connection: connection, environment: ["TEST_TOKEN_SOURCE": "s3cr3t-token-value", "PATH": "/usr/bin:/bin"])
        #expect(e.record.status == .failure)
        #expect(e.record.failureReason == .nonRetryableError)
        #expect(e.record.error?.contains("secrets into \(named)") == true, "\(e.record.error ?? "")")
        #expect(e.report.checkpoint == nil && e.report.children.isEmpty, "neither is kept")
        // What is kept of the report (logs, stats, progress, result) is masked.
        #expect(!"\(e.report)".contains("s3cr3t-token-value"), "\(e.report)")
        #expect("\(e.report)".contains("***"))
    }

    @Test func cancellationStopsTheAgentAndMarksItInterrupted() async {
        let handler = makeHandler([Fixtures.agent("hang.sh")], timeout: 60, grace: 2)
        let (e, seconds) = await measure {
            let task = Task { await runAgent(handler) }
            try? await Task.sleep(for: .milliseconds(300))
            task.cancel()
            return await task.value
        }
        #expect(e.verdict.interrupted)
        #expect(!e.record.timedOut)
        #expect(seconds < 5)
        assertNothingLeft(e)
    }

    @Test(arguments: [(Int32(0), "OK", true), (1, "WARNING", true), (2, "CRITICAL", false), (3, "UNKNOWN", false)])
    func nagiosMode(code: Int32, state: String, success: Bool) async throws {
        let e = await runAgent(makeHandler([Fixtures.agent("nagios.sh")], output: .nagios, env: ["CODE": "\(code)"]))
        #expect((e.record.status == .success) == success)
        if code == 2 { #expect(e.record.failureReason == .retryableError) }
        if code == 3 { #expect(e.record.failureReason == .nonRetryableError) }
        let result = try #require(e.record.result)
        #expect(result["state"] == .string(state))
        #expect(result["message"] == "DISK WARNING - free space: / 3326 MB (56%)")
        #expect(result["longOutput"] == "/ 15272 MB (77% inode=96%)\n/boot 68 MB (69% inode=99%)")
        #expect(result["perfdata"]?["/ used"] == ["value": .number("2643"), "uom": "MB", "warn": .number("5948"), "crit": .number("5958"), "min": .number("0"), "max": .number("5968")])
        #expect(result["perfdata"]?["time"] == ["value": .number("0.01"), "uom": "s", "warn": nil, "crit": nil, "min": nil, "max": nil])
        #expect(result["perfdata"]?["/boot"]?["value"] == .number("68"))
        #expect(result["perfdata"]?["/home"]?["max"] == .number("253414"))
    }

    @Test func manyConcurrentRunsLeaveNoZombies() async {
        let dir = TemporaryDirectory()
        await withTaskGroup(of: AgentExecution.self) { group in
            for i in 0..<40 {
                let name = ["succeed.sh", "grandchild.sh", "escape.sh", "exit-code.sh"][i % 4]
                group.addTask { await runAgent(makeHandler([Fixtures.agent(name)], env: ["CODE": "1", "PIDS_FILE": "\(dir.path)/pids-\(i)"])) }
            }
            for await e in group {
                #expect(processesOfRun(e.record.taskExecutionId).isEmpty)
                if let pid = e.process?.pid { #expect(ProcFS.stat(pid) == nil, "agent \(pid) was not reaped") }
            }
        }
        // Every escaped descendant of every escape.sh run is gone, not a zombie. (Other tests'
        // agents run in this process at the same time, so "no zombie at all" would be a race.)
        let pids = (0..<40).flatMap { i in
            ((try? String(contentsOfFile: "\(dir.path)/pids-\(i)", encoding: .utf8)) ?? "").split(separator: "\n").compactMap { Int32($0) }
        }
        #expect(pids.count >= 20, "10 escape.sh runs, at least 2 recorded descendants each")
        for pid in pids { #expect(ProcFS.stat(pid) == nil, "descendant \(pid) was not reaped") }
    }
}
