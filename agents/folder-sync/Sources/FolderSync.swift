import AgentKit
import Foundation

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// folder-sync: indexes a directory tree into JSON Lines documents (path, size, mtime, sha256).
///
/// The root task lists the top level and emits one child per folder (plus one for the top level's
/// own files). A child indexes one page of its folder's files, emits a child per subfolder on its
/// first page, and schedules its own next page when the folder holds more than `pageSize` files.
/// The incremental task type starts from the checkpoint, the newest mtime the last successful scan
/// saw, and neither hashes nor rewrites files that have not changed since.
@main struct FolderSync: Agent {
    struct Fields: Decodable {
        /// The tree to index.
        var root: String
        /// Where the documents go (default .connector-host/output/<connection>).
        var output: String?
        /// Files per task (default 100).
        var pageSize: Int?
        /// Log and skip unreadable files instead of failing the folder's task.
        var skipUnreadable: Bool?
    }

    /// What a parent hands a child: one page of one folder.
    struct FolderPage: Codable {
        var folder: String
        var page: Int
        /// Files modified at or before this time are unchanged (incremental only; 0 for full).
        var since: Double
        /// Whether this child schedules its subfolders (the top level's own files: no).
        var subfolders: Bool?
    }

    struct Checkpoint: Codable {
        /// The newest file mtime of the last successful scan.
        var since: Double
    }

    struct Document: Codable, Equatable {
        var path: String
        var size: Int
        var mtime: Double
        var sha256: String
    }

    func run(_ payload: Payload, context: AgentContext) async throws -> JSON {
        let fields = try payload.fields(as: Fields.self)
        let root = absolute(fields.root)
        let output = absolute(fields.output ?? ".connector-host/output/\(payload.connectionId)")
        let pageSize = fields.pageSize ?? 100
        guard pageSize > 0 else { throw AgentError.nonRetryable("connection \"\(payload.connectionId)\" field \"pageSize\" must be at least 1") }

        if payload.isRootTask {
            return try indexRoot(root, payload: payload, context: context)
        }
        guard let page = try payload.metadata(as: FolderPage.self) else {
            throw AgentError.nonRetryable("a child task without folder metadata")
        }
        return try await indexPage(
            page, root: root, output: output, pageSize: pageSize, incremental: payload.isIncremental, skipUnreadable: fields.skipUnreadable ?? false,
            context: context)
    }

    // MARK: Root

    private func indexRoot(_ root: String, payload: Payload, context: AgentContext) throws -> JSON {
        let top: [FileSystem.Entry]
        do {
            top = try FileSystem.list(root)
        } catch {
            switch error.code {
            case ENOENT, ENOTDIR: throw AgentError.entityNotFound("root folder \(root) does not exist")
            case EACCES, EPERM: throw AgentError.unauthorized("root folder \(root) is not readable by this user: fix its permissions, then `connector-host resume \(payload.connectionId)`")
            default: throw AgentError.retryable("cannot list the root folder: \(error.description)")
            }
        }
        let since = payload.isIncremental ? (try payload.checkpoint(as: Checkpoint.self))?.since ?? 0 : 0
        // Stat-only walk for the newest mtime: that is the checkpoint the next incremental run
        // starts from, taken from the files themselves rather than this machine's clock.
        let (files, newest) = newestModification(root)
        context.log("indexing \(root): \(files) files, " + (since > 0 ? "changes since the checkpoint" : "full"))
        try context.child(key: "folder:.", metadata: FolderPage(folder: ".", page: 0, since: since, subfolders: false))
        for entry in top where entry.isDirectory {
            try context.child(key: "folder:\(entry.name)", metadata: FolderPage(folder: entry.name, page: 0, since: since, subfolders: true))
        }
        // Committed only when the whole scan succeeds: a failed scan is covered again next time.
        try context.checkpoint(Checkpoint(since: max(since, newest)))
        return ["root": .string(root), "files": .number(Double(files))]
    }

    private func newestModification(_ root: String) -> (files: Int, newest: Double) {
        var files = 0
        var newest = 0.0
        var pending = [root]
        while let folder = pending.popLast() {
            guard let entries = try? FileSystem.list(folder) else { continue }
            for entry in entries {
                if entry.isDirectory { pending.append(folder + "/" + entry.name) }
                if entry.isFile {
                    files += 1
                    newest = max(newest, entry.mtime)
                }
            }
        }
        return (files, newest)
    }

    // MARK: Folder page

    private func indexPage(
        _ page: FolderPage, root: String, output: String, pageSize: Int, incremental: Bool, skipUnreadable: Bool, context: AgentContext
    ) async throws -> JSON {
        let path = page.folder == "." ? root : root + "/" + page.folder
        let entries: [FileSystem.Entry]
        do {
            entries = try FileSystem.list(path)
        } catch {
            switch error.code {
            case ENOENT, ENOTDIR: throw AgentError.entityNotFound("folder \(page.folder) vanished during the scan")
            case EACCES, EPERM: throw AgentError.nonRetryable("folder \(page.folder) is not readable (permission denied)")
            default: throw AgentError.retryable("cannot list \(page.folder): \(error.description)")
            }
        }
        if page.page == 0, page.subfolders == true {
            for entry in entries where entry.isDirectory {
                let sub = page.folder + "/" + entry.name
                try context.child(key: "folder:\(sub)", metadata: FolderPage(folder: sub, page: 0, since: page.since, subfolders: true))
            }
        }
        let files = entries.filter(\.isFile)
        let chunk = files.dropFirst(page.page * pageSize).prefix(pageSize)
        if (page.page + 1) * pageSize < files.count {
            try context.child(
                key: "folder:\(page.folder):page:\(page.page + 1)", metadata: FolderPage(folder: page.folder, page: page.page + 1, since: page.since))
        }

        let pageFile = output + "/" + pageFileName(folder: page.folder, page: page.page)
        let previous = incremental ? readDocuments(pageFile) : [:]
        var documents: [Document] = []
        var indexed = 0
        var bytes = 0
        for entry in chunk {
            try Task.checkCancellation()
            let relative = page.folder == "." ? entry.name : page.folder + "/" + entry.name
            if let known = previous[relative], entry.mtime <= page.since, known.mtime == entry.mtime, known.size == entry.size {
                documents.append(known)
                continue
            }
            do {
                let digest = try FileSystem.sha256(path + "/" + entry.name)
                documents.append(Document(path: relative, size: entry.size, mtime: entry.mtime, sha256: digest))
                indexed += 1
                bytes += entry.size
            } catch {
                switch error.code {
                case ENOENT:
                    context.log("\(relative) vanished before it was read; skipped", level: .warning)
                case EACCES, EPERM:
                    guard skipUnreadable else {
                        throw AgentError.nonRetryable("file \(relative) is not readable (permission denied); fix it or set \"skipUnreadable\": true")
                    }
                    context.log("skipping unreadable file \(relative)", level: .warning)
                default:
                    throw AgentError.retryable("cannot read \(relative): \(error.description)")
                }
            }
        }

        // One file per folder page, rewritten whole: a redelivered task produces the same file,
        // and an unchanged page is not written at all.
        if indexed > 0 || Set(previous.keys) != Set(documents.map(\.path)) || !incremental {
            try FileManager.default.createDirectory(atPath: output, withIntermediateDirectories: true)
            let lines = try documents.map { try JSON(encoding: $0).compactText + "\n" }.joined()
            try FileSystem.replace(pageFile, with: lines)
        }
        context.stats(records: indexed, bytes: bytes)
        return [
            "folder": .string(page.folder), "page": .number(Double(page.page)), "indexed": .number(Double(indexed)),
            "unchanged": .number(Double(documents.count - indexed)),
        ]
    }

    private func pageFileName(folder: String, page: Int) -> String {
        var digest = SHA256()
        digest.update(Array(folder.utf8))
        return String(digest.finalize().prefix(16)) + "-p\(page).jsonl"
    }

    private func readDocuments(_ path: String) -> [String: Document] {
        guard let text = try? String(contentsOfFile: path, encoding: .utf8) else { return [:] }
        var documents: [String: Document] = [:]
        for line in text.split(separator: "\n") {
            if let document = try? JSONDecoder().decode(Document.self, from: Data(line.utf8)) { documents[document.path] = document }
        }
        return documents
    }

    private func absolute(_ path: String) -> String {
        let expanded = (path as NSString).expandingTildeInPath
        return expanded.hasPrefix("/") ? expanded : FileManager.default.currentDirectoryPath + "/" + expanded
    }
}
