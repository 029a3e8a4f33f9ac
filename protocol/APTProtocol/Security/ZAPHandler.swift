import CZmq
import Foundation
import Synchronization

/// ZeroMQ Authentication Protocol (RFC 27) handler: answers libzmq's CURVE authentication requests from a
/// thread of its own, accepting only client keys in the allow-list.
public final class ZAPHandler: Sendable {
    /// Requests accepted so far.
    public var accepted: Int { counts.withLock { $0.accepted } }
    /// Requests refused so far.
    public var rejected: Int { counts.withLock { $0.rejected } }

    private let counts = Mutex((accepted: 0, rejected: 0))
    private let stopFlag = Atomic<Bool>(false)
    private let done = Atomic<Bool>(false)
    private let ready = Atomic<Int>(0)  // 0 starting, 1 bound, 2 failed

    /// Binds the handler in `context` (before any CURVE server socket of that context accepts peers) and
    /// starts its thread.
    public init(context: ZMQContext, allowList: AllowList) throws(ZMQError) {
        let keys = Set(allowList.keys.compactMap { CurveKeyPair.decode(z85: $0) })
        let thread = Thread { [self] in
            self.serve(context: context, keys: keys)
        }
        thread.name = "apt-zap"
        thread.start()
        while ready.load(ordering: .acquiring) == 0 { usleep(1000) }
        if ready.load(ordering: .acquiring) == 2 {
            throw ZMQError("zmq_bind(inproc://zeromq.zap.01)", code: EADDRINUSE)
        }
    }

    /// Stops the thread and waits for it.
    public func stop() {
        stopFlag.store(true, ordering: .releasing)
        while !done.load(ordering: .acquiring) { usleep(1000) }
    }

    deinit { stop() }

    private func serve(context: ZMQContext, keys: Set<[UInt8]>) {
        defer { done.store(true, ordering: .releasing) }
        guard let socket = try? ZMQSocket(context: context, type: .rep),
            (try? socket.bind("inproc://zeromq.zap.01")) != nil
        else {
            ready.store(2, ordering: .releasing)
            return
        }
        ready.store(1, ordering: .releasing)
        while !stopFlag.load(ordering: .acquiring) {
            guard let frames = try? socket.receive(timeoutMs: 50) else { continue }
            // Request: version, request id, domain, address, identity, mechanism, credentials…
            guard frames.count >= 6 else { continue }
            let requestId = frames[1]
            var ok = false
            if String(decoding: frames[5], as: UTF8.self) == "CURVE", frames.count >= 7, keys.contains(frames[6]) {
                ok = true
            }
            counts.withLock {
                if ok {
                    $0.accepted += 1
                } else {
                    $0.rejected += 1
                }
            }
            // The User-Id of an accepted connection is the client's public key in Z85: libzmq attaches it to
            // every message received on that connection, so the coordinator knows who really sent it.
            let userId = ok ? Array((CurveKeyPair.encode(raw: frames[6]) ?? "").utf8) : []
            let reply: [[UInt8]] = [
                Array("1.0".utf8), requestId, Array((ok ? "200" : "400").utf8),
                Array((ok ? "OK" : "client key not in allow-list").utf8), userId, [],
            ]
            try? socket.send(reply)
        }
        // Unbound before `done`: the next handler in this context may bind the ZAP endpoint at once.
        try? socket.unbind("inproc://zeromq.zap.01")
        socket.close()
    }
}
