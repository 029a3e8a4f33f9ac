import APTCore
import CZmq
import Foundation
import Synchronization
import Testing

@testable import APTProtocol

/// Identity, routing and delivery on real loopback sockets (issue: a node is who its CURVE key says).
@Suite("Identity and delivery on tcp://127.0.0.1", .serialized)
struct IdentityTests {
    let fast = fastTransport

    /// A CURVE router whose allow-list holds `keys`.
    func curveRouter(_ ctx: ZMQContext, server: CurveKeyPair, allow keys: [CurveKeyPair]) throws -> RouterEndpoint {
        try RouterEndpoint(
            context: ctx, bind: "tcp://127.0.0.1:*",
            security: .curveServer(keys: server, allowList: AllowList(keys: Set(keys.map(\.publicKey)))),
            options: fast)
    }

    @Test("a key pair is derived from its secret key alone; text that is not a key derives nothing")
    func derive() throws {
        for _ in 0..<4 {
            let pair = try CurveKeyPair.generate()
            #expect(CurveKeyPair.derive(secretKey: pair.secretKey) == pair)
        }
        #expect(CurveKeyPair.derive(secretKey: "not a key") == nil)
        #expect(CurveKeyPair.derive(secretKey: String(repeating: "~", count: 41)) == nil)
    }

    @Test("an allow-listed node cannot send as another: the coordinator sees the sender's key")
    func impersonation() throws {
        let ctx = try ZMQContext()
        let server = try CurveKeyPair.generate()
        let alice = try CurveKeyPair.generate()
        let bob = try CurveKeyPair.generate()
        let router = try curveRouter(ctx, server: server, allow: [alice, bob])
        // Alice's socket, with Bob's key as its routing id: libzmq lets any client pick its routing id.
        let forged = try ZMQSocket(context: ctx, type: .dealer, options: fast)
        try forged.set(ZMQ_ROUTING_ID, bytes: Array(bob.publicKey.utf8))
        _ = try Security.curveClient(keys: alice, serverPublicKey: server.publicKey).configure(forged, context: ctx)
        try forged.connect(router.endpoint)
        var hello = Samples.hello
        hello.name = "bob"
        try forged.send([Frame.encode(.hello(hello))])
        guard let incoming = try receive(router, within: 3000) else {
            Issue.record("nothing arrived")
            return
        }
        #expect(incoming.peer.publicKey == alice.publicKey, "the coordinator must see the real sender's key")
        guard case .malformed(_, .invalidValue(field: "routingId", _)) = incoming else {
            Issue.record("a node speaking under another key's routing id was let through: \(incoming)")
            return
        }
        // Bob, honest, is seen as Bob.
        let honest = try DealerEndpoint(
            context: ctx, connect: router.endpoint, identity: Array("bob".utf8),
            security: .curveClient(keys: bob, serverPublicKey: server.publicKey), options: fast)
        try honest.send(.hello(hello))
        guard case .message(let peer, .hello)? = try receive(router, within: 3000) else {
            Issue.record("bob's HELLO did not arrive")
            return
        }
        #expect(peer.publicKey == bob.publicKey)
        #expect(peer.identity == bob.publicKey)
    }

    @Test("a node reconnecting with the same key takes over its routing id")
    func handover() throws {
        let ctx = try ZMQContext()
        let server = try CurveKeyPair.generate()
        let node = try CurveKeyPair.generate()
        let router = try curveRouter(ctx, server: server, allow: [node])
        let security = Security.curveClient(keys: node, serverPublicKey: server.publicKey)
        let old = try DealerEndpoint(
            context: ctx, connect: router.endpoint, identity: [], security: security, options: fast)
        try old.send(.heartbeat(sequence: 1, timestampMs: 0))
        guard case .message(let first, _)? = try receive(router, within: 3000) else {
            Issue.record("first connection got nothing through")
            return
        }
        // The old socket is still open (a board that rebooted leaves a half-open TCP connection behind).
        let fresh = try DealerEndpoint(
            context: ctx, connect: router.endpoint, identity: [], security: security, options: fast)
        try fresh.send(.heartbeat(sequence: 2, timestampMs: 0))
        guard case .message(let second, .heartbeat(2, _))? = try receive(router, within: 3000) else {
            Issue.record("the reconnecting node's message did not arrive")
            return
        }
        #expect(second.routingId == first.routingId)
        try router.send(.heartbeat(sequence: 99, timestampMs: 0), to: second)
        #expect(try fresh.receive(timeoutMs: 3000) == .heartbeat(sequence: 99, timestampMs: 0))
        #expect(try old.receive(timeoutMs: 300) == nil, "the replaced connection still receives")
    }

    @Test("a send to a peer that is not connected fails with ZMQError.hostUnreachable")
    func unreachable() throws {
        let ctx = try ZMQContext()
        let router = try RouterEndpoint(context: ctx, bind: "tcp://127.0.0.1:*", options: fast)
        var caught: ZMQError? = nil
        do {
            try router.send(.heartbeat(sequence: 1, timestampMs: 0), to: Array("nobody".utf8))
        } catch {
            caught = error
        }
        #expect(caught.map { ZMQError.hostUnreachable ~= $0 } == true, "\(String(describing: caught))")
        // A peer that was connected and left.
        var dealer: DealerEndpoint? = try DealerEndpoint(
            context: ctx, connect: router.endpoint, identity: Array("gone".utf8), options: fast)
        try dealer?.send(.heartbeat(sequence: 1, timestampMs: 0))
        guard case .message(let peer, _)? = try receive(router, within: 3000) else {
            Issue.record("nothing arrived")
            return
        }
        dealer?.close()
        dealer = nil
        var failed = false
        let end = MonotonicClock.milliseconds() + 3000
        while !failed && MonotonicClock.milliseconds() < end {
            do {
                try router.send(.heartbeat(sequence: 2, timestampMs: 0), to: peer)
                usleepMs(20)
            } catch {
                failed = ZMQError.hostUnreachable ~= error
            }
        }
        #expect(failed, "sends to a departed peer kept succeeding")
    }

    @Test("a 5-second pause of the node's thread loses no queued message and causes no reconnect")
    func pause() throws {
        let ctx = try ZMQContext()
        // The coordinator side runs on its own thread, which owns the ROUTER: it heartbeats the node every
        // 200 ms and, one second in, sends a POLICY.
        let done = Atomic<Bool>(false)
        let bound = Mutex<String?>(nil)
        let options = fast
        let coordinator = Thread {
            guard let router = try? RouterEndpoint(context: ctx, bind: "tcp://127.0.0.1:*", options: options) else {
                bound.withLock { $0 = "" }
                return
            }
            bound.withLock { $0 = router.endpoint }
            var peer: PeerAddress? = nil
            var last: UInt64 = 0
            var sequence: UInt64 = 0
            var policySent = false
            let start = MonotonicClock.milliseconds()
            while !done.load(ordering: .acquiring) {
                if let i = try? router.receive(timeoutMs: 20), peer == nil { peer = i.peer }
                let now = MonotonicClock.milliseconds()
                guard let peer else { continue }
                if now - last >= 200 {
                    sequence += 1
                    try? router.send(.heartbeat(sequence: sequence, timestampMs: now), to: peer)
                    last = now
                }
                if !policySent && now - start >= 1000 {
                    try? router.send(.policy(Samples.policy), to: peer)
                    policySent = true
                }
            }
        }
        coordinator.start()
        defer {
            done.store(true, ordering: .releasing)
            while !coordinator.isFinished { usleepMs(5) }
        }
        var endpoint: String? = nil
        while endpoint == nil {
            endpoint = bound.withLock { $0 }
            usleepMs(5)
        }
        guard let endpoint, !endpoint.isEmpty else {
            Issue.record("the coordinator thread could not bind")
            return
        }
        let node = try NodeConnection(
            context: ctx, endpoint: endpoint, identity: Array("busy".utf8), hello: Samples.hello, options: fast,
            heartbeatIntervalMs: 500, missedAllowed: 3)
        _ = try node.poll(timeoutMs: 300)
        // Training: the thread does not touch the link for five seconds (ten heartbeat intervals).
        usleepMs(5000)
        var policy = false
        var reconnected = false
        let end = MonotonicClock.milliseconds() + 1500
        while MonotonicClock.milliseconds() < end && !policy {
            switch try node.poll(timeoutMs: 50) {
            case .message(.policy(let p))?: policy = p == Samples.policy
            case .reconnected?: reconnected = true
            default: break
            }
        }
        #expect(policy, "the POLICY queued during the pause was lost")
        #expect(!reconnected && node.reconnects == 0, "the pause was mistaken for a silent coordinator")
    }

    @Test("another thread's wake-up interrupts a poll at once")
    func wakeUp() throws {
        let ctx = try ZMQContext()
        let router = try RouterEndpoint(context: ctx, bind: "tcp://127.0.0.1:*", options: fast)
        let node = try NodeConnection(
            context: ctx, endpoint: router.endpoint, identity: Array("w".utf8), hello: Samples.hello, options: fast,
            heartbeatIntervalMs: 10_000, missedAllowed: 3)
        let waker = node.waker
        let t = Thread {
            usleepMs(100)
            waker.wake()
        }
        let start = MonotonicClock.milliseconds()
        t.start()
        #expect(try node.poll(timeoutMs: 5000) == .woken)
        #expect(MonotonicClock.milliseconds() - start < 2000)
    }

    @Test("plain mode is refused off loopback unless forced; [::1] is loopback")
    func plainOffLoopback() throws {
        #expect(Security.isLoopback(endpoint: "tcp://[::1]:5555"))
        #expect(Security.isLoopback(endpoint: "tcp://127.0.0.2:5555"))
        #expect(Security.isLoopback(endpoint: "ipc:///tmp/x"))
        #expect(!Security.isLoopback(endpoint: "tcp://[::]:5555"))
        #expect(!Security.isLoopback(endpoint: "tcp://eth0:5555"))
        #expect(!Security.isLoopback(endpoint: "tcp://127.evil.example:5555"))
        #expect(Security.plainWarning(endpoint: "tcp://[::1]:5555") == nil)
        let ctx = try ZMQContext()
        #expect(throws: SecurityError.self) {
            _ = try RouterEndpoint(context: ctx, bind: "tcp://0.0.0.0:*", options: fast)
        }
        let forced = try RouterEndpoint(
            context: ctx, bind: "tcp://0.0.0.0:*", options: fast, allowPlainOffLoopback: true)
        forced.close()
    }

    @Test("a failed CURVE router stops its ZAP thread: the next one in the context starts")
    func zapStoppedOnFailure() throws {
        let ctx = try ZMQContext()
        let server = try CurveKeyPair.generate()
        let security = Security.curveServer(keys: server, allowList: AllowList(keys: []))
        #expect(throws: ZMQError.self) {
            _ = try RouterEndpoint(context: ctx, bind: "tcp://256.0.0.1:1", security: security, options: fast)
        }
        let router = try RouterEndpoint(context: ctx, bind: "tcp://127.0.0.1:*", security: security, options: fast)
        #expect(router.zap != nil)
    }
}
