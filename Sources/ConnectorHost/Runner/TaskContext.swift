/// Everything that identifies one execution of a task, as the agent sees it in its payload.
public struct TaskContext: Sendable, Equatable {
    public var taskId: String
    public var taskExecutionId: String
    public var scanId: String
    public var parentTaskId: String?
    public var connectionId: String
    public var taskType: String
    public var trigger: Trigger
    public var attempt: Int
    /// What the parent attached to this child.
    public var taskMetadata: JSONValue?
    /// The last committed checkpoint.
    public var persistentTaskMetadata: JSONValue?
    /// CREATED, UPDATED or DELETED, for a lifecycle execution.
    public var connectionEvent: String?

    public var isRootTask: Bool { parentTaskId == nil }

    public init(
        taskId: String, taskExecutionId: String, scanId: String, parentTaskId: String? = nil, connectionId: String, taskType: String,
        trigger: Trigger, attempt: Int = 1, taskMetadata: JSONValue? = nil, persistentTaskMetadata: JSONValue? = nil,
        connectionEvent: String? = nil
    ) {
        self.taskId = taskId
        self.taskExecutionId = taskExecutionId
        self.scanId = scanId
        self.parentTaskId = parentTaskId
        self.connectionId = connectionId
        self.taskType = taskType
        self.trigger = trigger
        self.attempt = attempt
        self.taskMetadata = taskMetadata
        self.persistentTaskMetadata = persistentTaskMetadata
        self.connectionEvent = connectionEvent
    }
}
