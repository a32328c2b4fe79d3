/// What an agent said on stdout, message by message (see PROTOCOL.md).
public struct AgentReport: Sendable, Equatable {
    public struct Result: Sendable, Equatable {
        public enum Status: String, Sendable { case success, failure }
        public var status: Status
        /// As written by the agent: an unknown name is kept so the message can show it.
        public var failureReason: String?
        public var message: String?
        public var result: JSONValue?
        public var retryAfterSeconds: Double?
    }

    public struct Child: Sendable, Equatable {
        /// The whole message, validated later by the orchestrator against its limits.
        public var message: JSONObject
        public var line: Int
    }

    public struct Stats: Sendable, Equatable {
        public var records = 0
        public var bytes = 0
        public var schema: String?
    }

    public struct Log: Sendable, Equatable {
        public var level: String
        public var message: String
    }

    public struct Progress: Sendable, Equatable {
        public var message: String
        public var done: Int?
        public var total: Int?
    }

    public var result: Result?
    public var children: [Child] = []
    /// The last checkpoint message's metadata; nil when the agent sent none.
    public var checkpoint: JSONValue?
    public var stats: Stats?
    public var logs: [Log] = []
    public var progress: Progress?
    /// The first way stdout broke the protocol, naming the line.
    public var protocolError: String?

    public init() {}
}
