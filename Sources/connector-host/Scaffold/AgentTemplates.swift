/// The files `new-agent` writes: a small agent that already does the things every connector does
/// (fan out to children, checkpoint, count records, fail with a reason), for the author to replace.
enum AgentTemplates {
    /// `sdk`: the path of agents/sdk relative to the agent's folder.
    static func python(name: String, sdk: String) -> String {
        """
        #!/usr/bin/env python3
        \"\"\"\(name): a ConnectorHost agent (PROTOCOL.md has the contract, connector_agent.py the SDK).

        Fields: pages (how many children the root fans out to, default 3).
        The root schedules one child per page and stages a checkpoint; each child does one page.
        \"\"\"
        import os
        import sys

        sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "\(sdk)", "python"))
        from connector_agent import AgentError, agent  # noqa: E402


        @agent
        def run(payload, ctx):
            pages = payload.field("pages", 3, kind=int)
            if pages < 1:
                raise AgentError.non_retryable('field "pages" must be at least 1')
            if payload.is_root:
                runs = (payload.checkpoint or {}).get("runs", 0)
                ctx.log("run %d of \(name) for %s" % (runs + 1, payload.connection_id))
                for page in range(pages):
                    # Keys name what the child covers: a repeated root asks for the same children.
                    ctx.child("page:%d" % page, {"page": page})
                ctx.checkpoint({"runs": runs + 1})  # committed only when the whole scan succeeds
                return {"pages": pages}
            page = payload.metadata["page"]
            # Replace this with the real work: fetch the page, write it somewhere idempotently.
            ctx.stats(records=10)
            return {"page": page, "records": 10}

        """
    }

    static func shell(name: String, sdk: String) -> String {
        """
        #!/bin/sh
        # \(name): a ConnectorHost agent in shell (PROTOCOL.md has the contract, connector-agent.sh the SDK).
        # Fields: pages (how many children the root fans out to, default 3).
        # The root schedules one child per page and stages a checkpoint; each child does one page.
        . "$(dirname "$0")/\(sdk)/sh/connector-agent.sh"

        pages=$(ca_field pages 3)
        case "$pages" in '' | *[!0-9]*) ca_fail NON_RETRYABLE_ERROR "field \\"pages\\" must be a whole number" ;; esac

        if ca_is_root; then
            runs=$(ca_checkpoint runs 0)
            ca_log info "run $((runs + 1)) of \(name) for $CONNECTOR_HOST_CONNECTION_ID"
            page=0
            while [ "$page" -lt "$pages" ]; do
                # Keys name what the child covers: a repeated root asks for the same children.
                ca_child "page:$page" "$(ca_object page:=$page)"
                page=$((page + 1))
            done
            ca_save_checkpoint "$(ca_object runs:=$((runs + 1)))"   # committed only when the scan succeeds
            ca_succeed "$(ca_object pages:="$pages")"
        fi

        page=$(ca_metadata page)
        # Replace this with the real work: fetch the page, write it somewhere idempotently.
        ca_stats 10
        ca_succeed "$(ca_object page:="$page" records:=10)"

        """
    }

    /// `package`: the path of the ConnectorHost package relative to the agent's folder; `identity`:
    /// SwiftPM's name for it (its folder's name).
    static func swiftManifest(name: String, package: String, identity: String) -> String {
        """
        // swift-tools-version:6.0
        import PackageDescription

        // Built on first use by ./run.sh. AgentKit comes from the ConnectorHost package at
        // \(package) (SwiftPM names a local package after its folder: "\(identity)").
        let package = Package(
            name: "\(name)",
            platforms: [.macOS(.v15)],
            dependencies: [.package(path: "\(package)")],
            targets: [
                .executableTarget(
                    name: "\(name)",
                    dependencies: [.product(name: "AgentKit", package: "\(identity)")],
                    path: "Sources"
                )
            ]
        )

        """
    }

    static func swiftSource(name: String, typeName: String) -> String {
        """
        import AgentKit

        /// \(name): a ConnectorHost agent (PROTOCOL.md has the contract, AgentKit the SDK).
        /// Fields: pages (how many children the root fans out to, default 3).
        /// The root schedules one child per page and stages a checkpoint; each child does one page.
        @main struct \(typeName): Agent {
            struct Fields: Decodable { var pages: Int? }
            struct Page: Codable { var page: Int }
            struct Checkpoint: Codable { var runs: Int }

            func run(_ payload: Payload, context: AgentContext) async throws -> JSON {
                let pages = try payload.fields(as: Fields.self).pages ?? 3
                guard pages >= 1 else { throw AgentError.nonRetryable("field \\"pages\\" must be at least 1") }
                if payload.isRootTask {
                    let runs = try payload.checkpoint(as: Checkpoint.self)?.runs ?? 0
                    context.log("run \\(runs + 1) of \(name) for \\(payload.connectionId)")
                    for page in 0..<pages {
                        // Keys name what the child covers: a repeated root asks for the same children.
                        try context.child(key: "page:\\(page)", metadata: Page(page: page))
                    }
                    try context.checkpoint(Checkpoint(runs: runs + 1))  // committed only when the scan succeeds
                    return ["pages": .number(Double(pages))]
                }
                guard let page = try payload.metadata(as: Page.self) else { throw AgentError.nonRetryable("a child without a page") }
                // Replace this with the real work: fetch the page, write it somewhere idempotently.
                context.stats(records: 10)
                return ["page": .number(Double(page.page)), "records": 10]
            }
        }

        """
    }

    /// Builds the Swift agent when its sources are newer than its binary, then runs it.
    static func swiftLauncher(name: String) -> String {
        """
        #!/bin/sh
        # Runs the \(name) agent, building it (swift build -c release) when a source is newer than the binary.
        here=$(cd "$(dirname "$0")" && pwd)
        binary="$here/.build/release/\(name)"
        if [ ! -x "$binary" ] || [ -n "$(find "$here/Sources" "$here/Package.swift" -newer "$binary" 2>/dev/null | head -n 1)" ]; then
            swift build -c release --package-path "$here" >&2 || exit 75
        fi
        exec "$binary" "$@"

        """
    }
}
