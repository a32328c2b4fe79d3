import Foundation
import Testing

@testable import ConnectorHost

@Suite struct LoggerTests {
    /// A line below the logger's level costs a comparison: its label, message and metadata are
    /// not built (the host logs each scan it opens at info, which production filters out).
    @Test func aFilteredOutLineIsNeverBuilt() {
        let logger = Logger(minimum: .warning, fileDescriptor: -1)
        var built = 0
        func text(_ s: String) -> String {
            built += 1
            return s
        }
        logger.debug(text("c1/t"), text("scan opened"), ["scan": text("s1")])
        logger.info(text("c1/t"), text("scan opened"), ["scan": text("s1")])
        logger.log(.info, text("c1/t"), text("scan opened"))
        #expect(built == 0)
        logger.warning(text("c1/t"), text("tick skipped"), ["scan": text("s1")])
        #expect(built == 3)
    }
}
