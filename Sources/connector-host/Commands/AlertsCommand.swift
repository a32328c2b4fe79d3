import ConnectorHost
import Foundation

enum AlertsCommand {
    static let spec = CommandSpec(
        name: "alerts", abstract: "List open alerts (with --all, resolved ones too), newest first.",
        options: [.flag("all", "Include resolved alerts."), Common.limit, Common.json, Common.config, Common.state],
        discussion: "Alerts are evaluated when a scan ends and resolved when the condition clears; thresholds are under \"alerts\" in plugins.json.")

    static func run(_ args: ParsedArguments) async throws(CommandFailure) -> Int32 {
        let registry = try Common.loadRegistry(args)
        let store = try Common.openStore(registry)
        let limit = try Common.limit(args, default: 100)
        let alerts: [Alert]
        do { alerts = try store.alerts(includeResolved: args.flag("all"), limit: limit) } catch { throw .store(error) }
        if args.flag("json") {
            Common.emit(JSONValue.array(alerts.map(\.json)).serialized())
            return ExitCode.success
        }
        guard !alerts.isEmpty else {
            Common.emit(args.flag("all") ? "no alerts yet" : "no open alerts")
            return ExitCode.success
        }
        var table = Table(headers: ["OPENED", "STATE", "RULE", "CONNECTION", "TYPE", "MESSAGE"])
        for a in alerts {
            table.rows.append([Timestamp.short(a.openedAt), a.isOpen ? "open" : "resolved", a.rule.rawValue, a.connectionId, a.taskType, a.message])
        }
        Common.emit(table.rendered)
        return ExitCode.success
    }
}
