import ConnectorHost
import Foundation

enum NewAgentCommand {
    static let spec = CommandSpec(
        name: "new-agent", abstract: "Scaffold a working agent and register it (disabled) in plugins.json.",
        arguments: [ArgumentSpec(name: "name", help: "The agent's name: lower case letters, digits and dashes.")],
        options: [
            .value("language", "language", "swift, python or sh (required)."),
            .value("dir", "folder", "Where the agent's folder goes, relative to plugins.json (default: agents)."),
            Common.config,
        ],
        discussion: """
            Writes <dir>/<name>/ from the SDK of that language (agents/sdk, AgentKit), adds a handler <name> and a disabled
            connection <name> to plugins.json without touching the rest of the file, and prints the command that runs it once.
            Exits 0 on success, 64 on a bad name or language, 73 when the folder, handler or connection exists already,
            78 when plugins.json is invalid (before or after the edit; it is then left as it was).
            """)

    enum Language: String, CaseIterable {
        case swift, python, sh
    }

    static func run(_ args: ParsedArguments) async throws(CommandFailure) -> Int32 {
        let name = args.positionals[0]
        guard name.range(of: "^[a-z][a-z0-9-]{0,62}$", options: .regularExpression) != nil else {
            throw CommandFailure(code: ExitCode.usage, message: "error: agent name \"\(name)\" must start with a letter and use only a-z, 0-9 and '-'")
        }
        guard let languageText = args.value("language") else {
            throw CommandFailure(code: ExitCode.usage, message: "error: new-agent needs --language (swift, python or sh)")
        }
        guard let language = Language(rawValue: languageText) else {
            throw CommandFailure(code: ExitCode.usage, message: "error: unknown --language \"\(languageText)\" (swift, python or sh)")
        }
        let configPath = Common.configPath(args)
        // Validate first: new-agent must not build on a registry that does not load.
        let registry = try Common.loadRegistry(args)
        let configDirectory = URL(fileURLWithPath: registry.file).deletingLastPathComponent().standardizedFileURL.path
        if registry.handlers[name] != nil || registry.connections[name] != nil {
            throw CommandFailure(code: ExitCode.cantCreate, message: "error: \(registry.file) already has a handler or connection \"\(name)\"")
        }
        let folderOption = args.value("dir") ?? "agents"
        let relativeFolder = (folderOption as NSString).appendingPathComponent(name)
        let folder = absolute(relativeFolder, base: configDirectory)
        if FileManager.default.fileExists(atPath: folder) {
            throw CommandFailure(code: ExitCode.cantCreate, message: "error: \(folder) exists already; choose another name or remove it")
        }
        guard let package = packageRoot(near: configDirectory) else {
            throw CommandFailure(
                code: ExitCode.software,
                message: "error: cannot find the agent SDKs (agents/sdk and Sources/AgentKit of a ConnectorHost checkout) above \(configDirectory) or the connector-host binary")
        }

        let entry: String
        var files: [(path: String, text: String, executable: Bool)] = []
        let sdk = relativePath(from: folder, to: package + "/agents/sdk")
        switch language {
        case .python:
            entry = "\(relativeFolder)/\(name).py"
            files.append(("\(name).py", AgentTemplates.python(name: name, sdk: sdk), true))
        case .sh:
            entry = "\(relativeFolder)/\(name).sh"
            files.append(("\(name).sh", AgentTemplates.shell(name: name, sdk: sdk), true))
        case .swift:
            entry = "\(relativeFolder)/run.sh"
            let identity = URL(fileURLWithPath: package).lastPathComponent.lowercased()
            files.append(("Package.swift", AgentTemplates.swiftManifest(name: name, package: relativePath(from: folder, to: package), identity: identity), false))
            files.append(("Sources/\(typeName(name)).swift", AgentTemplates.swiftSource(name: name, typeName: typeName(name)), false))
            files.append(("run.sh", AgentTemplates.swiftLauncher(name: name), true))
        }

        do {
            for file in files {
                let path = folder + "/" + file.path
                try FileManager.default.createDirectory(atPath: (path as NSString).deletingLastPathComponent, withIntermediateDirectories: true)
                try Data(file.text.utf8).write(to: URL(fileURLWithPath: path))
                if file.executable { try FileManager.default.setAttributes([.posixPermissions: 0o755], ofItemAtPath: path) }
            }
            try register(name: name, command: entry, in: registry.file)
        } catch let failure as CommandFailure {
            try? FileManager.default.removeItem(atPath: folder)
            throw failure
        } catch {
            try? FileManager.default.removeItem(atPath: folder)
            throw CommandFailure(code: ExitCode.cantCreate, message: "error: cannot write the agent into \(folder): \(error.localizedDescription)")
        }

        let configFlag = args.value("config") == nil ? "" : " --config \(configPath)"
        Common.emit(
            """
            created \(relativeFolder)/ (\(language.rawValue)) and added handler and connection "\(name)" (disabled) to \(registry.file)
            try it:   connector-host exec \(name)\(configFlag)
            then set "enabled": true on the connection to schedule it
            """ + (language == .swift ? "\n(the first run builds the agent with swift build; that takes a minute)" : ""))
        return ExitCode.success
    }

    /// Adds the handler and the connection as text, validates the result with the real loader,
    /// and only then replaces the file (through a temporary name, so it is never half written).
    static func register(name: String, command: String, in file: String) throws(CommandFailure) {
        let handler: JSONValue = [
            "command": [.string(command)], "taskTypes": ["entity_ingestion_full", "entity_ingestion_incremental"], "timeoutSeconds": 300,
        ]
        let connection: JSONValue = [
            "handler": .string(name), "enabled": false, "fields": ["pages": 3],
            "tasks": [["type": "entity_ingestion_incremental", "every": "1h"]],
        ]
        let original: String
        do {
            original = try String(contentsOfFile: file, encoding: .utf8)
        } catch {
            throw CommandFailure(code: ExitCode.ioError, message: "error: cannot read \(file): \(error.localizedDescription)")
        }
        let edited: String
        do {
            let withHandler = try RegistryEditor.adding(name, value: handler, toSection: "handlers", in: original)
            edited = try RegistryEditor.adding(name, value: connection, toSection: "connections", in: withHandler)
        } catch {
            throw CommandFailure(code: error == .notAnObject ? ExitCode.config : ExitCode.cantCreate, message: "error: \(file): \(error)")
        }
        let directory = (file as NSString).deletingLastPathComponent
        let temporary = (directory.isEmpty ? "." : directory) + "/.plugins.json.new-agent.\(getpid())"
        do {
            try Data(edited.utf8).write(to: URL(fileURLWithPath: temporary))
            var info = stat()
            if stat(file, &info) == 0 { chmod(temporary, info.st_mode & 0o7777) }
        } catch {
            throw CommandFailure(code: ExitCode.ioError, message: "error: cannot write next to \(file): \(error.localizedDescription)")
        }
        do {
            _ = try RegistryLoader.load(file: temporary)
        } catch {
            unlink(temporary)
            throw CommandFailure(code: ExitCode.config, message: "error: the edited registry would not load, so \(file) is unchanged:\n\(error)")
        }
        guard rename(temporary, file) == 0 else {
            let reason = String(cString: strerror(errno))
            unlink(temporary)
            throw CommandFailure(code: ExitCode.ioError, message: "error: cannot replace \(file): \(reason)")
        }
    }

    /// The ConnectorHost checkout that holds the SDKs: above the config, else above the binary.
    static func packageRoot(near configDirectory: String) -> String? {
        let binary = URL(fileURLWithPath: CommandLine.arguments[0]).resolvingSymlinksInPath().deletingLastPathComponent().path
        for start in [configDirectory, binary] {
            var candidate = URL(fileURLWithPath: start).standardizedFileURL
            for _ in 0..<6 {
                let path = candidate.path
                if FileManager.default.fileExists(atPath: path + "/agents/sdk/python/connector_agent.py"),
                    FileManager.default.fileExists(atPath: path + "/Sources/AgentKit")
                {
                    return path
                }
                candidate.deleteLastPathComponent()
            }
        }
        return nil
    }

    static func typeName(_ name: String) -> String {
        name.split(separator: "-").map { $0.prefix(1).uppercased() + $0.dropFirst() }.joined()
    }

    static func absolute(_ path: String, base: String) -> String {
        URL(fileURLWithPath: path.hasPrefix("/") ? path : base + "/" + path).standardizedFileURL.path
    }

    /// `to` relative to the folder `from`, both absolute ("../sdk").
    static func relativePath(from: String, to: String) -> String {
        let source = URL(fileURLWithPath: from).standardizedFileURL.pathComponents
        let target = URL(fileURLWithPath: to).standardizedFileURL.pathComponents
        var common = 0
        while common < min(source.count, target.count), source[common] == target[common] { common += 1 }
        let ups = Array(repeating: "..", count: source.count - common)
        let parts = ups + target[common...]
        return parts.isEmpty ? "." : parts.joined(separator: "/")
    }
}
