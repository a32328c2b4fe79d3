import ConnectorHost

/// A small command-line parser in the manner of swift-argument-parser: each command declares its
/// options and arguments; `--help` is generated from that declaration; a usage error names the
/// offending word and exits 64 (EX_USAGE).
struct OptionSpec {
    var name: String
    /// nil: a flag.
    var valueName: String?
    var help: String
    var repeating = false

    static func flag(_ name: String, _ help: String) -> OptionSpec { OptionSpec(name: name, valueName: nil, help: help) }
    static func value(_ name: String, _ valueName: String, _ help: String, repeating: Bool = false) -> OptionSpec {
        OptionSpec(name: name, valueName: valueName, help: help, repeating: repeating)
    }
}

struct ArgumentSpec {
    var name: String
    var help: String
    var optional = false
}

struct CommandSpec {
    var name: String
    var abstract: String
    var arguments: [ArgumentSpec] = []
    var options: [OptionSpec] = []
    var discussion: String?

    var usage: String {
        var parts = ["connector-host", name]
        parts += arguments.map { $0.optional ? "[<\($0.name)>]" : "<\($0.name)>" }
        parts += options.map { option in
            let text = option.valueName.map { "--\(option.name) <\($0)>" } ?? "--\(option.name)"
            return "[\(text)]" + (option.repeating ? " ..." : "")
        }
        return parts.joined(separator: " ")
    }

    var help: String {
        var out = "OVERVIEW: \(abstract)\n\nUSAGE: \(usage)\n"
        if !arguments.isEmpty {
            out += "\nARGUMENTS:\n"
            for a in arguments { out += "  " + pad("<\(a.name)>") + a.help + "\n" }
        }
        out += "\nOPTIONS:\n"
        for o in options {
            let left = o.valueName.map { "--\(o.name) <\($0)>" } ?? "--\(o.name)"
            out += "  " + pad(left) + o.help + "\n"
        }
        out += "  " + pad("-h, --help") + "Show help information.\n"
        if let discussion { out += "\n\(discussion)\n" }
        return out
    }

    private func pad(_ s: String) -> String { s.count >= 26 ? s + "\n" + String(repeating: " ", count: 28) : s + String(repeating: " ", count: 26 - s.count) }
}

struct ParsedArguments {
    var values: [String: [String]] = [:]
    var flags: Set<String> = []
    var positionals: [String] = []
    var wantsHelp = false

    func value(_ name: String) -> String? { values[name]?.last }
    func all(_ name: String) -> [String] { values[name] ?? [] }
    func flag(_ name: String) -> Bool { flags.contains(name) }
}

struct UsageError: Error, CustomStringConvertible {
    var message: String
    var usage: String?
    var description: String { "error: \(message)" + (usage.map { "\nusage: \($0)\n  see 'connector-host help' or '--help'" } ?? "") }
}

enum ArgumentParser {
    static func parse(_ words: [String], for spec: CommandSpec) throws(UsageError) -> ParsedArguments {
        var parsed = ParsedArguments()
        var index = 0
        var onlyPositionals = false
        while index < words.count {
            let word = words[index]
            index += 1
            if onlyPositionals || !word.hasPrefix("-") || word == "-" {
                parsed.positionals.append(word)
                continue
            }
            if word == "--" { onlyPositionals = true; continue }
            if word == "-h" || word == "--help" { parsed.wantsHelp = true; continue }
            var name = String(word.drop(while: { $0 == "-" }))
            var inline: String?
            if let eq = name.firstIndex(of: "=") {
                inline = String(name[name.index(after: eq)...])
                name = String(name[..<eq])
            }
            guard let option = spec.options.first(where: { $0.name == name }) else {
                let hint = Suggestion.closest(to: name, in: spec.options.map(\.name)).map { " (did you mean '--\($0)'?)" } ?? ""
                throw UsageError(message: "unknown option '\(word)'\(hint)", usage: spec.usage)
            }
            if option.valueName == nil {
                if inline != nil { throw UsageError(message: "'--\(name)' takes no value", usage: spec.usage) }
                parsed.flags.insert(name)
                continue
            }
            let value: String
            if let inline {
                value = inline
            } else {
                guard index < words.count else { throw UsageError(message: "missing value for '--\(name) <\(option.valueName!)>'", usage: spec.usage) }
                value = words[index]
                index += 1
            }
            if !option.repeating && parsed.values[name] != nil {
                throw UsageError(message: "'--\(name)' given more than once", usage: spec.usage)
            }
            parsed.values[name, default: []].append(value)
        }
        if parsed.wantsHelp { return parsed }
        let required = spec.arguments.filter { !$0.optional }.count
        if parsed.positionals.count < required {
            throw UsageError(message: "missing <\(spec.arguments[parsed.positionals.count].name)>", usage: spec.usage)
        }
        if parsed.positionals.count > spec.arguments.count {
            throw UsageError(message: "unexpected argument '\(parsed.positionals[spec.arguments.count])'", usage: spec.usage)
        }
        return parsed
    }
}
