#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import ConnectorHost

// A closed stdout (a pipe to `head`) must be an error return, not a silent death.
signal(SIGPIPE, SIG_IGN)
// Likewise a file-size limit (`ulimit -f`) reached while writing the state: SQLite gets EFBIG and
// the host exits 74 naming it, instead of dying with a core dump mid-transaction (the runtime may
// already ignore it; this does not rely on that).
signal(SIGXFSZ, SIG_IGN)

let commands: [(spec: CommandSpec, run: (ParsedArguments) async throws(CommandFailure) -> Int32)] = [
    (ValidateCommand.spec, ValidateCommand.run),
    (ExecCommand.spec, ExecCommand.run),
    (RunCommand.runSpec, { (a) throws(CommandFailure) in try await RunCommand.run(a, daemon: false) }),
    (RunCommand.daemonSpec, { (a) throws(CommandFailure) in try await RunCommand.run(a, daemon: true) }),
    (TriggerCommand.spec, TriggerCommand.run),
    (CheckpointCommand.spec, CheckpointCommand.run),
    (ResumeCommand.spec, ResumeCommand.run),
    (ScheduleUnitCommand.spec, ScheduleUnitCommand.run),
    (RunsCommand.spec, RunsCommand.run),
    (ScansCommand.spec, ScansCommand.run),
    (StatusCommand.spec, StatusCommand.run),
    (AlertsCommand.spec, AlertsCommand.run),
    (PruneCommand.spec, PruneCommand.run),
    (NewAgentCommand.spec, NewAgentCommand.run),
]

let overview = """
    OVERVIEW: ConnectorHost runs data-source connectors (agents) on a schedule, durably.

    USAGE: connector-host <subcommand> [options]

    SUBCOMMANDS:
    \(commands.map { "  " + $0.spec.name.padding(toLength: 15, withPad: " ", startingAt: 0) + $0.spec.abstract }.joined(separator: "\n"))

      See 'connector-host help <subcommand>' or 'connector-host <subcommand> --help' for its options.
    """

@MainActor func main() async -> Int32 {
    var words = Array(CommandLine.arguments.dropFirst())
    guard let first = words.first else {
        Common.emit(overview, to: 2)
        return ExitCode.usage
    }
    words.removeFirst()
    if first == "--help" || first == "-h" || (first == "help" && words.isEmpty) {
        Common.emit(overview)
        return ExitCode.success
    }
    if first == "--version" {
        Common.emit("connector-host 0.1.0")
        return ExitCode.success
    }
    if first == "help", let name = words.first {
        guard let command = commands.first(where: { $0.spec.name == name }) else {
            Common.emit("error: unknown subcommand '\(name)'", to: 2)
            return ExitCode.usage
        }
        Common.emit(command.spec.help)
        return ExitCode.success
    }
    guard let command = commands.first(where: { $0.spec.name == first }) else {
        let hint = Suggestion.closest(to: first, in: commands.map(\.spec.name)).map { " (did you mean '\($0)'?)" } ?? ""
        Common.emit("error: unknown subcommand '\(first)'\(hint)\n\(overview)", to: 2)
        return ExitCode.usage
    }
    do {
        let parsed = try ArgumentParser.parse(words, for: command.spec)
        if parsed.wantsHelp {
            Common.emit(command.spec.help)
            return ExitCode.success
        }
        return try await command.run(parsed)
    } catch let error as UsageError {
        Common.emit(error.description, to: 2)
        return ExitCode.usage
    } catch let failure as CommandFailure {
        Common.emit(failure.message, to: 2)
        return failure.code
    } catch {
        Common.emit("error: \(error)", to: 2)
        return ExitCode.software
    }
}

exit(await main())
