import CZmq

#if canImport(Glibc)
    import Glibc
#elseif canImport(Musl)
    import Musl
#elseif canImport(Darwin)
    import Darwin
#endif

/// What the coordinator's socket received.
public enum Incoming: Sendable, Equatable {
    /// A well-formed message from `peer` (the ROUTER routing id).
    case message(peer: [UInt8], Message)
    /// A frame from `peer` that could not be decoded, and why.
    case malformed(peer: [UInt8], WireError)
}
