import Foundation

/// Runs store calls on one serial queue of their own, so a transaction waiting for SQLite's lock
/// (another process writing) never holds a thread of the async pool.
public final class StoreAccess: Sendable {
    public let store: any Store
    private let queue = DispatchQueue(label: "connector-host.store")

    public init(_ store: any Store) { self.store = store }

    public func callAsFunction<T: Sendable>(_ body: @escaping @Sendable (any Store) throws(StoreError) -> T) async throws(StoreError) -> T {
        let store = self.store
        let result: Result<T, StoreError> = await withCheckedContinuation { continuation in
            queue.async {
                do throws(StoreError) { continuation.resume(returning: .success(try body(store))) } catch { continuation.resume(returning: .failure(error)) }
            }
        }
        return try result.get()
    }
}
