import Foundation
import Testing

@testable import ConnectorHost

extension HostProcessTests {
    /// `new-agent`: the scaffold of each language runs through the host as written, and the
    /// registry keeps every byte it had.
    @Suite struct NewAgentTests {
        /// A hand-formatted registry, so a reformatting edit would show.
        static func installation() -> (HostFixture, String) {
            let h = HostFixture()
            let text = """
                {
                  "version": 1,
                  "state": "\(h.state)",
                  // no comments in JSON; this line is not here
                  "handlers": {
                    "scripted": {"command": ["\(Fixtures.agent("scripted.py"))"], "taskTypes": ["entity_ingestion_full"]}
                  },
                  "connections": {
                    "existing":   {"handler": "scripted", "tasks": [{"type": "entity_ingestion_full", "every": "1h"}]}
                  }
                }

                """.replacingOccurrences(of: "  // no comments in JSON; this line is not here\n", with: "")
            try! text.write(toFile: h.config, atomically: true, encoding: .utf8)
            return (h, text)
        }

        @Test(arguments: ["python", "sh", "swift"]) func scaffoldRunsAndKeepsTheRegistry(language: String) throws {
            let (h, original) = Self.installation()
            let name = "demo-\(language)"
            let created = h.run(["new-agent", name, "--language", language])
            #expect(created.status == 0, "\(created.stderr)")
            #expect(created.stdout.contains("connector-host exec \(name)"))

            // Every original line is still there, in order; only the new members were added.
            let edited = try String(contentsOfFile: h.config, encoding: .utf8)
            var remaining = edited[...]
            for line in original.split(separator: "\n", omittingEmptySubsequences: false) where !line.isEmpty {
                let found = try #require(remaining.range(of: line + "\n") ?? remaining.range(of: line), "lost line: \(line)")
                remaining = remaining[found.upperBound...]
            }
            let registry = try RegistryLoader.load(file: h.config)
            #expect(registry.handlers[name] != nil)
            #expect(registry.connections[name]?.enabled == false)
            #expect(registry.connections["existing"] != nil)

            let result = h.run(["exec", name, "--json"])
            #expect(result.status == 0, "\(result.stdout)\n\(result.stderr)")
            let record = try JSONParser.parse(result.stdout)
            #expect(record["status"] == "success")
            #expect(record["result"]?["pages"] == 3)
            #expect(try h.store().queueDepth() == 3, "the root fanned out to 3 pages")
            // The children run too (the connection is disabled for schedules, not for its queue).
            let run = h.run(["run"])
            #expect(run.status == 0, "\(run.stderr)")
            let history = try JSONParser.parse(h.run(["runs", "--json", "--connection", name]).stdout)
            #expect(history.arrayValue?.filter { $0["status"] == "success" }.count == 4, "\(history)")
        }

        @Test func refusesExistingNamesBadInputAndBrokenRegistries() throws {
            let (h, original) = Self.installation()
            #expect(h.run(["new-agent", "existing", "--language", "sh"]).status == 73)
            #expect(h.run(["new-agent", "Bad_Name", "--language", "sh"]).status == 64)
            let language = h.run(["new-agent", "fine", "--language", "cobol"])
            #expect(language.status == 64)
            #expect(language.stderr.contains("swift, python or sh"))
            #expect(try String(contentsOfFile: h.config, encoding: .utf8) == original)
            #expect(!FileManager.default.fileExists(atPath: "\(h.directory.path)/agents/fine"))

            try "{\"version\": 1, \"handlers\": [}".write(toFile: h.config, atomically: true, encoding: .utf8)
            let broken = h.run(["new-agent", "fine", "--language", "sh"])
            #expect(broken.status == 78)
            #expect(try String(contentsOfFile: h.config, encoding: .utf8) == "{\"version\": 1, \"handlers\": [}")
            #expect(!FileManager.default.fileExists(atPath: "\(h.directory.path)/agents/fine"))
        }

        @Test func editorAddsMissingSectionsAndKeepsLayout() throws {
            let compact = #"{"version":1,"handlers":{}}"#
            let added = try RegistryEditor.adding("x", value: ["command": ["a"]], toSection: "handlers", in: compact)
            #expect(added == "{\"version\":1,\"handlers\":{\n  \"x\": {\n    \"command\": [\"a\"]\n  }\n}}")
            let withConnections = try RegistryEditor.adding("c", value: ["handler": "x"], toSection: "connections", in: added)
            #expect(try JSONParser.parse(withConnections)["connections"]?["c"]?["handler"] == "x")
            #expect(throws: RegistryEditor.EditError.alreadyDefined(section: "handlers", name: "x")) {
                try RegistryEditor.adding("x", value: [:], toSection: "handlers", in: added)
            }
            #expect(throws: RegistryEditor.EditError.sectionNotAnObject("handlers")) {
                try RegistryEditor.adding("x", value: [:], toSection: "handlers", in: #"{"handlers": [1]}"#)
            }
            // Strings with braces and escaped quotes do not confuse the scanner.
            let tricky = #"{"handlers": {"a": {"command": ["}\"{"]}}}"#
            let edited = try RegistryEditor.adding("b", value: ["command": ["b"]], toSection: "handlers", in: tricky)
            #expect(try JSONParser.parse(edited)["handlers"]?["a"]?["command"]?.arrayValue?.first == "}\"{")
            #expect(edited.hasPrefix(#"{"handlers": {"a": {"command": ["}\"{"]}"#))
        }
    }
}
