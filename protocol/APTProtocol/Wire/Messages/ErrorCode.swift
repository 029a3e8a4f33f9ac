import APTCore

/// Error codes carried by ERROR.
public enum ErrorCode: UInt16, Sendable {
    /// The frame could not be decoded.
    case malformed = 1
    /// Another major version.
    case unsupportedVersion = 2
    /// Not allowed now (e.g. UPDATE before WELCOME).
    case unexpected = 3
    /// A value was refused (NaN in a delta, wrong shape, lying budget).
    case rejected = 4
    /// The peer is not known.
    case unknownPeer = 5
    /// Something failed inside the sender.
    case internalError = 6
}
