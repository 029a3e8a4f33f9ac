import CZmq

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

/// Socket settings shared by both ends.
public struct TransportOptions: Hashable, Sendable {
    /// `ZMQ_MAXMSGSIZE`: a peer sending a larger frame is disconnected (bytes).
    public var maxMessageBytes: Int64
    /// `ZMQ_SNDHWM` and `ZMQ_RCVHWM`.
    public var highWaterMark: Int32
    /// `ZMQ_LINGER` (ms): how long close waits for unsent messages.
    public var lingerMs: Int32
    /// `ZMQ_RECONNECT_IVL` (ms).
    public var reconnectIntervalMs: Int32
    /// `ZMQ_RECONNECT_IVL_MAX` (ms): exponential backoff cap.
    public var reconnectIntervalMaxMs: Int32
    /// `ZMQ_HEARTBEAT_IVL` (ms): ZMTP PINGs.
    public var heartbeatIntervalMs: Int32
    /// `ZMQ_HEARTBEAT_TIMEOUT` (ms): a connection without traffic this long is dropped.
    public var heartbeatTimeoutMs: Int32
    /// `ZMQ_HEARTBEAT_TTL` (ms): asks the peer to drop us after this long without traffic.
    public var heartbeatTTLMs: Int32

    /// Creates options.
    public init(
        maxMessageBytes: Int64 = 64 << 20, highWaterMark: Int32 = 1000, lingerMs: Int32 = 200,
        reconnectIntervalMs: Int32 = 100, reconnectIntervalMaxMs: Int32 = 5000, heartbeatIntervalMs: Int32 = 1000,
        heartbeatTimeoutMs: Int32 = 3000, heartbeatTTLMs: Int32 = 3000
    ) {
        self.maxMessageBytes = maxMessageBytes
        self.highWaterMark = highWaterMark
        self.lingerMs = lingerMs
        self.reconnectIntervalMs = reconnectIntervalMs
        self.reconnectIntervalMaxMs = reconnectIntervalMaxMs
        self.heartbeatIntervalMs = heartbeatIntervalMs
        self.heartbeatTimeoutMs = heartbeatTimeoutMs
        self.heartbeatTTLMs = heartbeatTTLMs
    }

    /// The defaults: 64 MiB frames (the `lenet` model in float32 is 0.25 MB, `mlp` 0.94 MB), HWM 1000, linger
    /// 200 ms, reconnect 100 ms backing off to 5 s, ZMTP heartbeats every second with a 3 s timeout.
    public static let standard = TransportOptions()

    func apply(to s: ZMQSocket) throws(ZMQError) {
        try s.set(ZMQ_MAXMSGSIZE, int64: maxMessageBytes)
        try s.set(ZMQ_SNDHWM, highWaterMark)
        try s.set(ZMQ_RCVHWM, highWaterMark)
        try s.set(ZMQ_LINGER, lingerMs)
        try s.set(ZMQ_RECONNECT_IVL, reconnectIntervalMs)
        try s.set(ZMQ_RECONNECT_IVL_MAX, reconnectIntervalMaxMs)
        try s.set(ZMQ_HEARTBEAT_IVL, heartbeatIntervalMs)
        try s.set(ZMQ_HEARTBEAT_TIMEOUT, heartbeatTimeoutMs)
        try s.set(ZMQ_HEARTBEAT_TTL, heartbeatTTLMs)
    }
}

/// How a connection is secured.
public enum Security: Hashable, Sendable {
    /// No encryption or authentication: explicit, and warned about unless on loopback.
    case plain
    /// Coordinator side of CURVE: its key pair and the node keys it accepts.
    case curveServer(keys: CurveKeyPair, allowList: AllowList)
    /// Node side of CURVE: its key pair and the coordinator's pinned public key.
    case curveClient(keys: CurveKeyPair, serverPublicKey: String)

    /// The warning to print for plain mode on a non-loopback endpoint, or nil.
    public static func plainWarning(endpoint: String) -> String? {
        let host = endpoint.split(separator: "/").last.map { $0.split(separator: ":").first.map(String.init) ?? "" } ?? ""
        let loopback = host.hasPrefix("127.") || host == "localhost" || host == "[::1]" || endpoint.hasPrefix("inproc://")
            || endpoint.hasPrefix("ipc://")
        return loopback ? nil
            : "plain (unencrypted, unauthenticated) transport on \(endpoint): anyone on the network can read and send "
            + "messages; use CURVE (--secret-key/--allow-list) off loopback"
    }
}

/// What the coordinator's socket received.
public enum Incoming: Sendable, Equatable {
    /// A well-formed message from `peer` (the ROUTER routing id).
    case message(peer: [UInt8], Message)
    /// A frame from `peer` that could not be decoded, and why.
    case malformed(peer: [UInt8], WireError)
}

/// The coordinator's ROUTER socket: bound, optionally CURVE with a ZAP allow-list.
public final class RouterEndpoint {
    /// The socket.
    public let socket: ZMQSocket
    /// The ZAP handler when CURVE is on.
    public let zap: ZAPHandler?
    /// The bound endpoint with any `*` port resolved.
    public let endpoint: String
    /// Decoder limits.
    public let limits: DecodeLimits

    /// Binds a ROUTER at `endpoint`.
    public init(
        context: ZMQContext, bind endpoint: String, security: Security = .plain, options: TransportOptions = .standard,
        limits: DecodeLimits = .standard
    ) throws {
        let s = try ZMQSocket(context: context, type: .router, lingerMs: options.lingerMs)
        try options.apply(to: s)
        var zap: ZAPHandler? = nil
        switch security {
        case .plain: break
        case .curveServer(let keys, let allow):
            guard let secret = CurveKeyPair.decode(z85: keys.secretKey) else {
                throw SecurityError("coordinator secret key is not a 40-character Z85 key")
            }
            zap = try ZAPHandler(context: context, allowList: allow)
            try s.set(ZMQ_ZAP_DOMAIN, bytes: Array("apt-fleet".utf8))
            try s.set(ZMQ_CURVE_SERVER, 1)
            try s.set(ZMQ_CURVE_SECRETKEY, bytes: secret)
        case .curveClient:
            throw SecurityError("a coordinator needs a CURVE server key pair, not client keys")
        }
        try s.bind(endpoint)
        self.socket = s
        self.zap = zap
        self.endpoint = try s.lastEndpoint()
        self.limits = limits
    }

    /// Receives one frame, waiting at most `timeoutMs`.
    public func receive(timeoutMs: Int32) throws(ZMQError) -> Incoming? {
        guard let frames = try socket.receive(timeoutMs: timeoutMs) else { return nil }
        guard frames.count == 2 else {
            return .malformed(peer: frames.first ?? [],
                              WireError.invalidValue(field: "frames", reason: "expected 1 message frame, got \(frames.count - 1)"))
        }
        do {
            return .message(peer: frames[0], try Frame.decode(frames[1], limits: limits))
        } catch {
            return .malformed(peer: frames[0], error)
        }
    }

    /// Sends `message` to `peer`.
    public func send(_ message: Message, to peer: [UInt8]) throws(ZMQError) {
        try socket.send([peer, Frame.encode(message)], dontWait: true)
    }

    /// Closes the socket and stops the ZAP handler.
    public func close() {
        socket.close()
        zap?.stop()
    }

    deinit { close() }
}

/// A node's DEALER socket: connected, optionally CURVE with the coordinator's key pinned.
public final class DealerEndpoint {
    /// The socket.
    public let socket: ZMQSocket
    /// Decoder limits.
    public let limits: DecodeLimits

    /// Connects a DEALER to `endpoint` with routing id `identity`.
    public init(
        context: ZMQContext, connect endpoint: String, identity: [UInt8], security: Security = .plain,
        options: TransportOptions = .standard, limits: DecodeLimits = .standard
    ) throws {
        let s = try ZMQSocket(context: context, type: .dealer, lingerMs: options.lingerMs)
        try options.apply(to: s)
        if !identity.isEmpty { try s.set(ZMQ_ROUTING_ID, bytes: identity) }
        switch security {
        case .plain: break
        case .curveClient(let keys, let server):
            guard let sk = CurveKeyPair.decode(z85: server) else {
                throw SecurityError("coordinator public key is not a 40-character Z85 key")
            }
            guard let pub = CurveKeyPair.decode(z85: keys.publicKey), let sec = CurveKeyPair.decode(z85: keys.secretKey) else {
                throw SecurityError("node key pair is not two 40-character Z85 keys")
            }
            try s.set(ZMQ_CURVE_SERVERKEY, bytes: sk)
            try s.set(ZMQ_CURVE_PUBLICKEY, bytes: pub)
            try s.set(ZMQ_CURVE_SECRETKEY, bytes: sec)
        case .curveServer:
            throw SecurityError("a node needs CURVE client keys and the coordinator's public key")
        }
        try s.connect(endpoint)
        self.socket = s
        self.limits = limits
    }

    /// Sends `message`.
    public func send(_ message: Message) throws(ZMQError) {
        try socket.send([Frame.encode(message)], dontWait: true)
    }

    /// Sends raw bytes as one frame (for tests of the peer's decoder).
    public func sendRaw(_ frame: [UInt8]) throws(ZMQError) {
        try socket.send([frame], dontWait: true)
    }

    /// Receives one message, waiting at most `timeoutMs`. A malformed frame throws its `WireError`.
    public func receive(timeoutMs: Int32) throws -> Message? {
        guard let frames = try socket.receive(timeoutMs: timeoutMs) else { return nil }
        return try message(from: frames)
    }

    /// Decodes what a DEALER receives: exactly one frame holding one message.
    public func message(from frames: [[UInt8]]) throws(WireError) -> Message {
        guard frames.count == 1 else {
            throw WireError.invalidValue(field: "frames", reason: "expected 1 message frame, got \(frames.count)")
        }
        return try Frame.decode(frames[0], limits: limits)
    }

    /// Closes the socket.
    public func close() { socket.close() }
}

/// Application-level liveness: a peer that sent nothing for `missedAllowed` heartbeat intervals is gone.
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

/// Exponential reconnect backoff with a cap and seeded jitter (so a fleet does not reconnect in lock-step).
public struct ReconnectBackoff: Sendable {
    /// First delay, ms.
    public let initialMs: UInt64
    /// Largest delay, ms.
    public let maxMs: UInt64
    /// Attempts so far.
    public private(set) var attempt: Int = 0
    private var random: UInt64

    /// Creates a backoff.
    public init(initialMs: UInt64 = 100, maxMs: UInt64 = 5000, seed: UInt64 = 1) {
        self.initialMs = initialMs
        self.maxMs = maxMs
        self.random = seed | 1
    }

    /// The next delay: `min(max, initial · 2^attempt)`, minus up to a quarter of jitter.
    public mutating func next() -> UInt64 {
        let base = min(maxMs, initialMs << UInt64(min(attempt, 20)))
        attempt += 1
        random ^= random << 13
        random ^= random >> 7
        random ^= random << 17
        return base - (base / 4 == 0 ? 0 : random % (base / 4))
    }

    /// Resets after a successful connection.
    public mutating func reset() { attempt = 0 }
}

/// Milliseconds on a monotonic clock.
public func monotonicMilliseconds() -> UInt64 {
    var ts = timespec()
    clock_gettime(CLOCK_MONOTONIC, &ts)
    return UInt64(ts.tv_sec) * 1000 + UInt64(ts.tv_nsec) / 1_000_000
}
