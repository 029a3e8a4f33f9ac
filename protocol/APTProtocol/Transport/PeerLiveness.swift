import CZmq

#if canImport(Glibc)
    import Glibc
#elseif canImport(Musl)
    import Musl
#elseif canImport(Darwin)
    import Darwin
#endif

/// Pure state: the caller feeds it times, so it is tested without sockets.
public struct PeerLiveness<Peer: Hashable & Sendable>: Sendable {
    /// Heartbeat interval, ms.
    public let intervalMs: UInt64
    /// Intervals a peer may miss.
    public let missedAllowed: UInt64
    private var lastSeen: [Peer: UInt64] = [:]

    /// Creates a tracker.
    public init(intervalMs: UInt64, missedAllowed: UInt64 = 3) {
        self.intervalMs = intervalMs
        self.missedAllowed = missedAllowed
    }

    /// Records traffic from `peer` at `nowMs`.
    public mutating func heard(_ peer: Peer, at nowMs: UInt64) { lastSeen[peer] = nowMs }

    /// Forgets `peer`.
    public mutating func remove(_ peer: Peer) { lastSeen[peer] = nil }

    /// Peers known.
    public var peers: [Peer] { Array(lastSeen.keys) }

    /// Removes and returns the peers silent for more than `missedAllowed · intervalMs` at `nowMs`.
    public mutating func expire(at nowMs: UInt64) -> [Peer] {
        let limit = missedAllowed * intervalMs
        let gone = lastSeen.filter { nowMs > $0.value && nowMs - $0.value > limit }.map(\.key)
        for p in gone { lastSeen[p] = nil }
        return gone
    }
}
