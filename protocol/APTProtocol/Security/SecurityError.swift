import CZmq
import Foundation
import Synchronization

/// A security set-up that cannot be used.
public struct SecurityError: Error, Equatable, CustomStringConvertible, Sendable {
    /// What was wrong.
    public var message: String
    /// Creates an error.
    public init(_ message: String) { self.message = message }
    public var description: String { message }
}
