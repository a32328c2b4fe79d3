/// The scheduler's candidates, in the order they are tried. Starts mostly take the first one, so
/// taking it is O(1): the list can hold thousands of one-task connections, and `Array.remove(at: 0)`
/// moved every one of them at each start.
struct CandidateList: RandomAccessCollection {
    private var storage: [StoredTask]
    private(set) var startIndex = 0
    var endIndex: Int { storage.count }

    init(_ tasks: [StoredTask] = []) { storage = tasks }

    subscript(position: Int) -> StoredTask { storage[position] }

    mutating func remove(at index: Int) -> StoredTask {
        guard index == startIndex else { return storage.remove(at: index) }
        let task = storage[index]
        startIndex += 1
        if startIndex == storage.count {
            storage.removeAll(keepingCapacity: true)
            startIndex = 0
        }
        return task
    }

    /// Puts `task` back in front, to be tried first again.
    mutating func putBack(_ task: StoredTask) {
        guard startIndex > 0 else { return storage.insert(task, at: 0) }
        startIndex -= 1
        storage[startIndex] = task
    }
}
