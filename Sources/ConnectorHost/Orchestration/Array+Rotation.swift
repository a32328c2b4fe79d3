extension Array {
    /// The same elements, starting at a random index and wrapping around. Hosts sharing a state
    /// read the same lists (ready tasks, due schedules) in the same order; each starting at its own
    /// place keeps them from racing for the same rows one after another.
    func rotatedAtRandom() -> [Element] {
        guard count > 1 else { return self }
        let offset = Int.random(in: 0..<count)
        return Array(self[offset...] + self[..<offset])
    }
}
