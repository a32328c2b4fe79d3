import Testing

@testable import ConnectorHost

@Suite struct JSONParserTests {
    @Test func roundTripsKeepingOrderAndNumberText() throws {
        let text = #"{"b":1,"a":[true,false,null,"x\n\u00e9\ud83d\ude00"],"n":12345678901234567890,"f":-1.5e3}"#
        let value = try JSONParser.parse(text)
        #expect(value.objectValue?.keys == ["b", "a", "n", "f"])
        #expect(value["n"] == .number("12345678901234567890"))
        #expect(value["a"]?.arrayValue?[3] == .string("x\né😀"))
        #expect(try JSONParser.parse(value.serialized()) == value)
        #expect(try JSONParser.parse(value.serialized(pretty: true)) == value)
    }

    @Test(arguments: [
        ("{\n  \"a\": 1,\n  \"b\": 2,\n}", 4, 1, "expected a key"),
        ("{\"a\": tru}", 1, 7, "invalid literal"),
        ("[1, 2", 1, 6, "unexpected end of input"),
        ("{\"a\": 1, \"a\": 2}", 1, 10, "duplicate key \"a\""),
        ("01", 1, 1, "leading zero"),
        ("{} x", 1, 4, "unexpected text after"),
        ("\"\\q\"", 1, 2, "invalid escape"),
    ])
    func errorsNameLineAndColumn(text: String, line: Int, column: Int, message: String) {
        do {
            _ = try JSONParser.parse(text)
            Issue.record("parsed invalid JSON \(text)")
        } catch {
            #expect(error.line == line)
            #expect(error.column == column)
            #expect(error.message.contains(message), "\(error.message)")
        }
    }

    @Test(arguments: [
        (#"{"a": {"b": [1, {"c": 1, "c": 2}]}}"#, "a.b[1]"),
        (#"[{"x": [true, tru]}]"#, "[0].x[1]"),
        (#"{"connections": {"c": {"tasks": [}}}"#, "connections.c.tasks[0]"),
        ("{,}", ""),
    ])
    func errorsNameTheirPathInTheDocument(text: String, path: String) {
        do {
            _ = try JSONParser.parse(text)
            Issue.record("parsed invalid JSON \(text)")
        } catch {
            #expect(error.path == path, "\(error)")
        }
    }

    /// Strings are written in runs between the characters that need escaping: those runs must
    /// keep every other character, whatever it sits next to.
    @Test(arguments: [
        "", "plain", "\"", "\\", "a\"b\\c", "line\nbreak\r\n", "\t\u{0}\u{1f}\u{7f}", "é e\u{301} 日本 👩‍👩‍👧", "\"👩‍👩‍👧\"\n", "\r\n\r\n", "end\\",
    ])
    func stringsRoundTripAndEscapeOnlyWhatJSONRequires(text: String) throws {
        let written = JSONValue.string(text).serialized()
        #expect(try JSONParser.parse(written) == .string(text))
        #expect(!written.dropFirst().dropLast().unicodeScalars.contains { $0.value < 0x20 })
        #expect(written.utf8.count == text.utf8.count + 2 + text.unicodeScalars.reduce(0) { count, scalar in
            switch scalar {
            case "\"", "\\", "\n", "\r", "\t": count + 1
            case _ where scalar.value < 0x20: count + 5
            default: count
            }
        })
    }

    @Test func deepNestingIsRefusedNotACrash() {
        let deep = String(repeating: "[", count: 100_000) + String(repeating: "]", count: 100_000)
        #expect(throws: JSONParseError.self) { try JSONParser.parse(deep) }
    }

    /// A registry's `connections` object has one key per connection: its members are kept in
    /// order, and a key repeated far from the first is still refused, while the parser no longer
    /// searches the members for each new key.
    @Test func aLargeObjectKeepsEveryMemberInOrderAndStillRefusesARepeatedKey() throws {
        let keys = (0..<5000).map { "c\($0)" }
        let text = "{" + keys.map { "\"\($0)\": {\"n\": 1}" }.joined(separator: ", ") + "}"
        let object = try #require(try JSONParser.parse(text).objectValue)
        #expect(object.keys == keys)
        #expect(object["c4999"] == ["n": 1])
        #expect(JSONValue.object(object).canonical.objectValue?.keys == keys.sorted())
        let repeated = String(text.dropLast()) + ", \"c17\": 2}"
        #expect(throws: JSONParseError.self) { try JSONParser.parse(repeated) }
    }
}
