/// Who sent a message to the coordinator's ROUTER.
public struct PeerAddress: Hashable, Sendable, CustomStringConvertible {
    /// The ROUTER routing id: where replies go.
    public var routingId: [UInt8]
    /// The sender's CURVE public key (Z85) as authenticated by the ZAP handler; nil in plain mode.
    public var publicKey: String?

    /// Creates an address.
    public init(routingId: [UInt8], publicKey: String? = nil) {
        self.routingId = routingId
        self.publicKey = publicKey
    }

    /// What the coordinator keys a node by: its CURVE public key, or in plain mode its routing id (the
    /// name the node chose).
    public var identity: String { publicKey ?? String(decoding: routingId, as: UTF8.self) }

    public var description: String {
        publicKey.map { "key \($0)" } ?? "'\(String(decoding: routingId, as: UTF8.self))'"
    }
}

/// What the coordinator's socket received.
public enum Incoming: Sendable, Equatable {
    /// A well-formed message from `peer`.
    case message(from: PeerAddress, Message)
    /// A frame from `peer` that could not be decoded or was refused, and why.
    case malformed(from: PeerAddress, WireError)

    /// The sender.
    public var peer: PeerAddress {
        switch self {
        case .message(let p, _), .malformed(let p, _): return p
        }
    }
}
