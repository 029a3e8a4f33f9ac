import APTCore

/// Error codes carried by ERROR. A receiver keeps an unknown code (from a newer minor version) as it is and
/// treats it like `internalError`: the peer refused something.
public struct ErrorCode: RawRepresentable, Hashable, Sendable, CustomStringConvertible {
    /// The code on the wire.
    public var rawValue: UInt16
    /// Wraps a code.
    public init(rawValue: UInt16) { self.rawValue = rawValue }

    /// The frame could not be decoded.
    public static let malformed = ErrorCode(rawValue: 1)
    /// Another major version.
    public static let unsupportedVersion = ErrorCode(rawValue: 2)
    /// Not allowed now (e.g. UPDATE before WELCOME).
    public static let unexpected = ErrorCode(rawValue: 3)
    /// A value was refused (NaN in a delta, wrong shape, lying budget).
    public static let rejected = ErrorCode(rawValue: 4)
    /// The peer is not known.
    public static let unknownPeer = ErrorCode(rawValue: 5)
    /// Something failed inside the sender.
    public static let internalError = ErrorCode(rawValue: 6)
    /// The work asked for cannot be done within the node's budgets (a policy it cannot satisfy).
    public static let cannotComply = ErrorCode(rawValue: 7)

    public var description: String {
        switch self {
        case .malformed: return "malformed"
        case .unsupportedVersion: return "unsupported version"
        case .unexpected: return "unexpected message"
        case .rejected: return "rejected value"
        case .unknownPeer: return "unknown peer"
        case .internalError: return "internal error"
        case .cannotComply: return "cannot comply"
        default: return "error \(rawValue)"
        }
    }
}
