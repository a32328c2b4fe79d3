/// Validates the `child` messages of one execution and gives each its deterministic id.
/// One invalid message fails the parent and schedules none of its children.
public enum ChildRequests {
    public static let maxKeyLength = 1024
    public static let maxMetadataBytes = 256 * 1024
    static let keys = ["type", "key", "taskType", "metadata"]

    public struct Context: Sendable {
        public var appId: String
        public var scanId: String
        public var parentTaskId: String
        public var parentTaskType: String
        public var parentDepth: Int
        public var handlerTaskTypes: [String]
        public var tasksInScan: Int
        public var limits: FanOutLimits
    }

    public static func validate(_ messages: [AgentReport.Child], context: Context) -> Result<[NewChild], ValidationFailure> {
        var problems: [String] = []
        var children: [NewChild] = []
        var seen = Set<String>()
        for child in messages {
            let at = "child on stdout line \(child.line)"
            for key in child.message.keys where !keys.contains(key) {
                problems.append("\(at): unknown field \"\(key)\"\(Suggestion.hint(for: key, in: keys))")
            }
            guard let key = child.message["key"]?.stringValue, !key.isEmpty else {
                problems.append("\(at): key is required and must be a non-empty string")
                continue
            }
            if key.count > maxKeyLength { problems.append("\(at): key must not exceed \(maxKeyLength) characters") }
            var taskType = context.parentTaskType
            if let value = child.message["taskType"] {
                if let t = value.stringValue, !t.isEmpty {
                    if t.count > 255 {
                        problems.append("\(at): taskType must not exceed 255 characters")
                    } else if !context.handlerTaskTypes.contains(t) {
                        problems.append("\(at): taskType must be one of: \(context.handlerTaskTypes.joined(separator: ", "))")
                    }
                    taskType = t
                } else {
                    problems.append("\(at): taskType must be a non-empty string")
                }
            }
            let metadata = child.message["metadata"]
            if let metadata, metadata.serialized().utf8.count > maxMetadataBytes {
                problems.append("\(at): metadata is \(metadata.serialized().utf8.count) bytes, over the \(maxMetadataBytes) byte limit")
            }
            let id = DeterministicID.childTaskId(appId: context.appId, scanId: context.scanId, parentTaskId: context.parentTaskId, key: key)
            if seen.insert(id).inserted { children.append(NewChild(id: id, key: key, taskType: taskType, metadata: metadata)) }
        }
        if children.count > context.limits.maxChildrenPerTask {
            problems.append("\(children.count) children requested, over the limit of \(context.limits.maxChildrenPerTask) per task (limits.maxChildrenPerTask)")
        }
        if !children.isEmpty && context.parentDepth + 1 > context.limits.maxDepth {
            problems.append("children would be at depth \(context.parentDepth + 1), over the limit of \(context.limits.maxDepth) (limits.maxDepth)")
        }
        if context.tasksInScan + children.count > context.limits.maxTasksPerScan {
            problems.append("the scan would hold \(context.tasksInScan + children.count) tasks, over the limit of \(context.limits.maxTasksPerScan) (limits.maxTasksPerScan)")
        }
        return problems.isEmpty ? .success(children) : .failure(ValidationFailure(problems: problems))
    }

    public struct ValidationFailure: Error, Sendable, CustomStringConvertible {
        public var problems: [String]
        public var description: String { "invalid child request: " + problems.joined(separator: "; ") }
    }
}
