import ConnectorHost
import Foundation

enum ScheduleUnitCommand {
    static let spec = CommandSpec(
        name: "schedule-unit", abstract: "Print a systemd service and timer, or a crontab line, that runs `connector-host run` for this config.",
        options: [.flag("systemd", "Print a systemd service and timer pair."), .flag("cron", "Print a crontab line."), Common.config, Common.state],
        discussion: "The pass runs every minute; each connection's own schedule decides what is due. Exit 75 (another pass still running) counts as success.")

    static func run(_ args: ParsedArguments) async throws(CommandFailure) -> Int32 {
        guard args.flag("systemd") != args.flag("cron") else {
            throw CommandFailure(code: ExitCode.usage, message: "error: give exactly one of --systemd or --cron\nusage: \(spec.usage)")
        }
        let registry = try Common.loadRegistry(args)
        let binary = (try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/exe")) ?? CommandLine.arguments[0]
        let config = URL(fileURLWithPath: registry.file).standardizedFileURL.path
        var command = "\(binary) run --config \(config)"
        if args.value("state") != nil { command += " --state \(registry.statePath)" }
        if args.flag("cron") {
            let log = (registry.statePath as NSString).deletingLastPathComponent + "/run.log"
            Common.emit("# connector-host: one pass a minute for \(config)\n* * * * * cd \(registry.directory) && \(command) >> \(log) 2>&1")
        } else {
            Common.emit(
                """
                # /etc/systemd/system/connector-host.service
                [Unit]
                Description=ConnectorHost pass for \(config)
                After=network-online.target

                [Service]
                Type=oneshot
                WorkingDirectory=\(registry.directory)
                ExecStart=\(command)
                # 75: the previous pass still holds the state lock; not a failure.
                SuccessExitStatus=75
                # The host stops its agents itself on SIGTERM (shutdownGraceSeconds, default 30).
                KillMode=mixed
                TimeoutStopSec=\(Int(registry.shutdownGraceSeconds) + 30)

                # /etc/systemd/system/connector-host.timer
                [Unit]
                Description=Run ConnectorHost every minute

                [Timer]
                OnCalendar=*-*-* *:*:00
                Persistent=true

                [Install]
                WantedBy=timers.target
                """)
        }
        return ExitCode.success
    }
}
