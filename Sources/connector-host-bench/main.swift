import ConnectorHost
import Foundation

// bench/run.sh's in-process row: `connector-host-bench store <tasks> <state file> [normal|full]`
// prints one JSON object with the store's throughput.
let arguments = CommandLine.arguments
guard arguments.count >= 4, arguments[1] == "store", let tasks = Int(arguments[2]) else {
    FileHandle.standardError.write(Data("usage: connector-host-bench store <tasks> <state file> [normal|full]\n".utf8))
    exit(64)
}
let durability = arguments.count > 4 ? Durability(rawValue: arguments[4]) ?? .normal : .normal
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
