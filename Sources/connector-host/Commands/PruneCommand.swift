import ConnectorHost
import Foundation

enum PruneCommand {
    static let spec = CommandSpec(
        name: "prune", abstract: "Delete history older than the retention: executions, scans, resolved alerts.",
        options: [.value("older-than", "duration", "Delete what is older than this (default: retention.history, 30d)."), Common.config, Common.state],
        discussion: "Kept whatever their age: the last execution of each task, open alerts, checkpoints and scans still running. `run` and `daemon` prune at start.")

    static func run(_ args: ParsedArguments) async throws(CommandFailure) -> Int32 {
        let registry = try Common.loadRegistry(args)
        let seconds = try Common.duration(args, "older-than") ?? registry.operations.retentionSeconds
        let store = try Common.openStore(registry)
        let result: PruneResult
        do { result = try store.prune(before: Date().addingTimeInterval(-Double(seconds))) } catch { throw .store(error) }
        Common.emit(
            "pruned history older than \(DurationText.format(seconds: seconds)): \(result.executions) execution(s), \(result.scans) scan(s), \(result.tasks) task(s), \(result.alerts) resolved alert(s), \(result.events) event(s)")
        return ExitCode.success
    }
}
