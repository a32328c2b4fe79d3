import ConnectorHost
import Foundation
import CSupport

// bench/run.sh's in-process row: `connector-host-bench store <tasks> <state file> [normal|full]`
// prints one JSON object with the store's throughput.
let arguments = CommandLine.arguments
guard arguments.count >= 4, arguments[1] == "store", let tasks = Int(arguments[2]) else {
    FileHandle.standardError.write(Data("usage: connector-host-bench store <tasks> <state file> [normal|full]\n".utf8))
    exit(64)
}
let durability = arguments.count > 4 ? Durability(rawValue: arguments[4]) ?? .normal : .normal
// A claim alone (UPDATE … RETURNING) opens a temporary b-tree whose page cache, freed at the top
// of the heap, glibc hands back to the kernel and takes again at the next claim: page faults and
// brk/madvise worth half this row's time (3,800 against 8,600 claims and completions a second).
// The host's lanes claim inside the completion's transaction and show no such churn (5 madvise
// calls in 3,000 tasks), so the row measures the store, not the allocator's trimming.
ch_set_malloc_trim_threshold(64 << 20)
do {
    let figures = try StoreBenchmark.run(path: arguments[3], tasks: tasks, durability: durability)
    print(
        """
        {"tasks": \(figures.tasks), "enqueueSeconds": \(figures.enqueueSeconds), "claimCompleteSeconds": \(figures.claimCompleteSeconds), \
        "enqueuePerSecond": \(Int(figures.enqueuePerSecond)), "claimCompletePerSecond": \(Int(figures.claimCompletePerSecond))}
        """)
} catch {
    FileHandle.standardError.write(Data("error: \(error)\n".utf8))
    exit(74)
}
