import CZmq

/// Watches a connecting socket's security handshakes through libzmq's socket monitor (`zmq_socket_monitor`
/// over a PAIR socket on `inproc://`), so that a node can say *why* a coordinator never answers: its key was
/// refused (ZAP said no), the handshake broke (the coordinator could not open our HELLO box: the coordinator key
/// we were given is not its key), or all is well. Confined to the thread that owns the watched socket.
public final class HandshakeMonitor {
    /// What the monitor saw.
    public enum Outcome: Equatable, Sendable {
        /// A handshake completed: the peer is who we think it is and it accepted us.
        case succeeded
        /// The peer's authenticator refused this socket's key (ZAP status code, e.g. 400).
        case refused(status: Int)
        /// The handshake broke off before it completed (the peer dropped the connection or sent garbage).
        case failed(detail: String)
    }

    private let pair: ZMQSocket
    private let watched: ZMQSocket

    /// Starts monitoring `socket`'s handshakes (call before `connect`).
    public init(socket: ZMQSocket, name: String) throws(ZMQError) {
        let endpoint = "inproc://apt-handshake-\(name)"
        let events =
            ZMQ_EVENT_HANDSHAKE_SUCCEEDED | ZMQ_EVENT_HANDSHAKE_FAILED_NO_DETAIL | ZMQ_EVENT_HANDSHAKE_FAILED_PROTOCOL
            | ZMQ_EVENT_HANDSHAKE_FAILED_AUTH
        try socket.monitor(endpoint, events: Int32(events))
        let pair = try ZMQSocket(context: socket.context, type: .pair)
        try pair.connect(endpoint)
        self.pair = pair
        self.watched = socket
    }

    /// The next handshake outcome, if one is queued (never waits).
    public func next() throws(ZMQError) -> Outcome? {
        while let frames = try pair.receive(timeoutMs: 0) {
            if let outcome = Self.outcome(of: frames) { return outcome }
        }
        return nil
    }

    /// Decodes one monitor message: a 6-byte frame (event: UInt16, value: UInt32, native byte order) and the
    /// endpoint. Events this type did not ask for give nil.
    static func outcome(of frames: [[UInt8]]) -> Outcome? {
        guard let head = frames.first, head.count >= 6 else { return nil }
        let event = head.withUnsafeBytes { Int32($0.loadUnaligned(fromByteOffset: 0, as: UInt16.self)) }
        let value = head.withUnsafeBytes { Int($0.loadUnaligned(fromByteOffset: 2, as: UInt32.self)) }
        switch event {
        case ZMQ_EVENT_HANDSHAKE_SUCCEEDED:
            return .succeeded
        case ZMQ_EVENT_HANDSHAKE_FAILED_AUTH:
            return .refused(status: value)
        case ZMQ_EVENT_HANDSHAKE_FAILED_NO_DETAIL:
            return .failed(
                detail: "the connection closed mid-handshake (\(String(cString: zmq_strerror(Int32(value)))))")
        case ZMQ_EVENT_HANDSHAKE_FAILED_PROTOCOL:
            return .failed(detail: "protocol error 0x\(String(value, radix: 16))")
        default:
            return nil
        }
    }

    deinit {
        // Stops the monitor before the PAIR goes (the watched socket may live on).
        if let h = try? watched.rawHandle() { zmq_socket_monitor(h, nil, 0) }
        pair.close()
    }
}
