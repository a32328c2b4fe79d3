/// Plain aligned columns for people; scripts use `--json`.
struct Table {
    var headers: [String]
    var rows: [[String]] = []

    var rendered: String {
        var widths = headers.map(\.count)
        for row in rows { for (i, cell) in row.enumerated() where i < widths.count { widths[i] = max(widths[i], cell.count) } }
        func line(_ cells: [String]) -> String {
            cells.enumerated().map { i, c in i == cells.count - 1 ? c : c + String(repeating: " ", count: widths[i] - c.count) }.joined(separator: "  ")
        }
        return ([line(headers)] + rows.map(line)).joined(separator: "\n")
    }
}

func formatDuration(ms: Int) -> String {
    if ms < 1000 { return "\(ms) ms" }
    if ms < 60_000 { return String(format: "%.1f s", Double(ms) / 1000) }
    return "\(ms / 60_000) min \(ms % 60_000 / 1000) s"
}

import Foundation
