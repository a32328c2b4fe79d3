/// Secrets in what an agent reported. The host masks them in everything it stores or prints; the
/// two things it must keep verbatim (they are handed back to agents) are checked instead.
extension AgentReport {
    /// The report with secret values masked in the result, its message, stats, logs and progress.
    func redacted(_ redactor: Redactor) -> AgentReport {
        guard !redactor.values.isEmpty else { return self }
        var copy = self
        if var result = copy.result {
            result.message = result.message.map(redactor.redact)
            result.result = result.result.map(redactor.redact)
            result.failureReason = result.failureReason.map(redactor.redact)
            copy.result = result
        }
        copy.stats?.schema = stats?.schema.map(redactor.redact)
        copy.logs = logs.map { Log(level: redactor.redact($0.level), message: redactor.redact($0.message)) }
        copy.progress?.message = redactor.redact(progress?.message ?? "")
        copy.protocolError = protocolError.map(redactor.redact)
        return copy
    }

    /// Where a secret value sits in data the host would have to store unmasked: "its checkpoint"
    /// or "the child on stdout line N"; nil when there is none.
    func secretKeptVerbatim(_ redactor: Redactor) -> String? {
        guard !redactor.values.isEmpty else { return nil }
        if let checkpoint, redactor.occurs(in: checkpoint) { return "its checkpoint" }
        if let child = children.first(where: { redactor.occurs(in: .object($0.message)) }) { return "the child on stdout line \(child.line)" }
        return nil
    }
}
