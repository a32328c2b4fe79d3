#!/usr/bin/env python3
"""folder-sync: indexes a directory tree into JSON Lines documents (path, size, mtime, sha256).

The root task emits one child per top-level folder (and one for the top level's own files); each
child indexes one page of its folder's files, emits a child per subfolder on its first page, and
schedules its own next page when the folder has more files than `pageSize`. Incremental runs skip
files not modified since the checkpoint the last successful scan committed.

Fields: root (the tree), output (where documents go; default .connector-host/output/<connection>),
pageSize (files per task, default 100). Protocol: see PROTOCOL.md.
"""
import hashlib
import json
import os
import sys
import time


def emit(message):
    sys.stdout.write(json.dumps(message) + "\n")


def fail(reason, message):
    emit({"type": "result", "status": "failure", "failureReason": reason, "message": message})
    sys.exit(0)


def sha256(path):
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 16), b""):
            digest.update(block)
    return digest.hexdigest()


def main():
    with open(sys.argv[sys.argv.index("--payload") + 1]) as handle:
        payload = json.load(handle)
    fields = payload["connectorFormFields"]
    root = fields.get("root")
    if not root:
        fail("NON_RETRYABLE_ERROR", "the connection needs a 'root' field naming the folder to index")
    root = os.path.abspath(root)
    output = os.path.abspath(fields.get("output") or os.path.join(".connector-host", "output", payload["connectionId"]))
    page_size = int(fields.get("pageSize", 100))
    incremental = payload["taskDescription"]["taskType"].endswith("_incremental")
    meta = payload.get("taskMetadata") or {}

    if not os.path.isdir(root):
        fail("ENTITY_NOT_FOUND", "root folder %s does not exist" % root)

    if payload["taskDescription"]["isRootTask"]:
        checkpoint = payload.get("persistentTaskMetadata") or {}
        since = checkpoint.get("since", 0) if incremental else 0
        started = time.time()
        emit({"type": "log", "level": "info", "message": "indexing %s (%s)" % (root, "changes since %s" % since if since else "full")})
        emit({"type": "child", "key": "folder:.", "metadata": {"folder": ".", "page": 0, "since": since}})
        for entry in sorted(os.scandir(root), key=lambda e: e.name):
            if entry.is_dir(follow_symlinks=False):
                emit({"type": "child", "key": "folder:" + entry.name, "metadata": {"folder": entry.name, "page": 0, "since": since, "subfolders": True}})
        # Committed only when the whole scan succeeds: a failed scan is covered again next time.
        emit({"type": "checkpoint", "metadata": {"since": started}})
        emit({"type": "result", "status": "success", "result": {"root": root}})
        return

    folder = meta["folder"]
    page = int(meta.get("page", 0))
    since = float(meta.get("since", 0))
    path = os.path.normpath(os.path.join(root, folder))
    try:
        entries = sorted(os.scandir(path), key=lambda e: e.name)
    except FileNotFoundError:
        fail("ENTITY_NOT_FOUND", "folder %s vanished during the scan" % folder)
    except PermissionError:
        fail("NON_RETRYABLE_ERROR", "folder %s is not readable" % folder)

    if page == 0 and meta.get("subfolders"):
        for entry in entries:
            if entry.is_dir(follow_symlinks=False):
                sub = os.path.join(folder, entry.name)
                emit({"type": "child", "key": "folder:" + sub, "metadata": {"folder": sub, "page": 0, "since": since, "subfolders": True}})
    files = [e for e in entries if e.is_file(follow_symlinks=False)]
    chunk = files[page * page_size:(page + 1) * page_size]
    if (page + 1) * page_size < len(files):
        emit({"type": "child", "key": "folder:%s:page:%d" % (folder, page + 1),
              "metadata": {"folder": folder, "page": page + 1, "since": since}})

    documents = []
    for entry in chunk:
        info = entry.stat(follow_symlinks=False)
        if info.st_mtime <= since:
            continue
        try:
            digest = sha256(entry.path)
        except PermissionError:
            emit({"type": "log", "level": "warning", "message": "skipping unreadable file %s" % os.path.relpath(entry.path, root)})
            continue
        documents.append({"path": os.path.relpath(entry.path, root), "size": info.st_size, "mtime": info.st_mtime, "sha256": digest})

    # One file per folder page, rewritten whole: a redelivered task produces the same file.
    os.makedirs(output, exist_ok=True)
    name = hashlib.sha1(folder.encode()).hexdigest()[:16] + "-p%d.jsonl" % page
    if documents or not incremental:
        temporary = os.path.join(output, "." + name + ".tmp")
        with open(temporary, "w") as handle:
            for document in documents:
                handle.write(json.dumps(document, sort_keys=True) + "\n")
        os.replace(temporary, os.path.join(output, name))
    emit({"type": "stats", "records": len(documents), "bytes": sum(d["size"] for d in documents)})
    emit({"type": "result", "status": "success", "result": {"folder": folder, "page": page, "indexed": len(documents), "unchanged": len(chunk) - len(documents)}})


if __name__ == "__main__":
    main()
