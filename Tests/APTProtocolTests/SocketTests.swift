import APTCore
import Testing

@testable import APTProtocol

/// Real ZeroMQ sockets on loopback TCP.
@Suite("ZeroMQ transport on tcp://127.0.0.1", .serialized)
struct SocketTests {
    let fast = fastTransport

    @Test("request and response across ROUTER and DEALER")
    func requestResponse() throws {
        let ctx = try ZMQContext()
        let router = try RouterEndpoint(context: ctx, bind: "tcp://127.0.0.1:*", options: fast)
        #expect(router.endpoint.hasPrefix("tcp://127.0.0.1:"))
        let dealer = try DealerEndpoint(
            context: ctx, connect: router.endpoint, identity: Array("node-1".utf8), options: fast)
        try dealer.send(.hello(Samples.hello))
        guard case .message(let peer, let m)? = try receive(router, within: 3000) else {
            Issue.record("router got nothing")
            return
        }
        #expect(peer.routingId == Array("node-1".utf8))
        #expect(peer.publicKey == nil)
        #expect(peer.identity == "node-1")
        #expect(m == .hello(Samples.hello))
        let welcome = Message.welcome(Welcome(nodeId: 1, model: .mlp, policy: Samples.policy))
        try router.send(welcome, to: peer)
        #expect(try dealer.receive(timeoutMs: 3000) == welcome)
        // A garbage frame is reported as malformed, naming why, and the socket keeps working.
        try dealer.sendRaw([1, 2, 3])
        guard case .malformed(_, let e)? = try receive(router, within: 3000) else {
            Issue.record("garbage not reported")
            return
        }
        #expect(e == .truncated(field: "header.magic", offset: 0, needed: 4, available: 3))
        try dealer.send(.heartbeat(sequence: 1, timestampMs: 1))
        if case .message(_, .heartbeat)? = try receive(router, within: 3000) {
        } else {
            Issue.record("no heartbeat after garbage")
        }
    }

    @Test("the DEALER reconnects when the ROUTER restarts, and a node re-introduces itself")
    func reconnect() throws {
        let ctx = try ZMQContext()
        var first: RouterEndpoint? = try RouterEndpoint(context: ctx, bind: "tcp://127.0.0.1:*", options: fast)
        let endpoint = first!.endpoint
        let node = try NodeConnection(
            context: ctx, endpoint: endpoint, identity: Array("node-r".utf8), hello: Samples.hello,
            options: fast, heartbeatIntervalMs: 100, missedAllowed: 3,
            backoff: ReconnectBackoff(initialMs: 20, maxMs: 200, seed: 7))
        guard case .message(let peer, .hello)? = try receive(first!, within: 3000) else {
            Issue.record("first router got no HELLO")
            return
        }
        try first!.send(.heartbeat(sequence: 1, timestampMs: 0), to: peer)
        #expect(try node.poll(timeoutMs: 2000) == .message(.heartbeat(sequence: 1, timestampMs: 0)))
        first!.close()
        first = nil
        // libzmq closes the listener asynchronously: the port may take a moment to come free.
        var bound: RouterEndpoint? = nil
        for _ in 0..<100 where bound == nil {
            bound = try? RouterEndpoint(context: ctx, bind: endpoint, options: fast)
            if bound == nil { usleepMs(50) }
        }
        guard let second = bound else {
            Issue.record("could not bind \(endpoint) again")
            return
        }
        // The restarted coordinator does not answer; the node notices the silence, reconnects and says HELLO.
        var reconnected = false
        var helloSeen = false
        let end = MonotonicClock.milliseconds() + 8000
        while MonotonicClock.milliseconds() < end && !(reconnected && helloSeen) {
            if case .reconnected? = try node.poll(timeoutMs: 50) { reconnected = true }
            while let i = try second.receive(timeoutMs: 0) {
                if case .message(_, .hello(let h)) = i, h == Samples.hello { helloSeen = true }
            }
        }
        #expect(reconnected, "the node did not detect the restart")
        #expect(helloSeen, "the restarted router never got a HELLO")
        #expect(node.reconnects >= 1)
    }

    @Test("a peer that stops heartbeating is declared gone after the allowed misses")
    func heartbeatTimeout() throws {
        let ctx = try ZMQContext()
        let router = try RouterEndpoint(context: ctx, bind: "tcp://127.0.0.1:*", options: fast)
        var dealer: DealerEndpoint? = try DealerEndpoint(
            context: ctx, connect: router.endpoint, identity: Array("hb".utf8),
            options: fast)
        var liveness = PeerLiveness<PeerAddress>(intervalMs: 100, missedAllowed: 3)
        var lastBeat: UInt64 = 0
        for i in 0..<5 {
            try dealer!.send(.heartbeat(sequence: UInt64(i), timestampMs: MonotonicClock.milliseconds()))
            if case .message(let p, .heartbeat)? = try receive(router, within: 2000) {
                liveness.heard(p, at: MonotonicClock.milliseconds())
                lastBeat = MonotonicClock.milliseconds()
            }
            #expect(liveness.expire(at: MonotonicClock.milliseconds()).isEmpty, "declared gone while heartbeating")
            usleepMs(100)
        }
        dealer!.close()
        dealer = nil
        var goneAt: UInt64? = nil
        let end = MonotonicClock.milliseconds() + 3000
        while goneAt == nil && MonotonicClock.milliseconds() < end {
            _ = try router.receive(timeoutMs: 20)
            if !liveness.expire(at: MonotonicClock.milliseconds()).isEmpty { goneAt = MonotonicClock.milliseconds() }
        }
        guard let goneAt else {
            Issue.record("silent peer never declared gone")
            return
        }
        #expect(goneAt - lastBeat > 300, "declared gone before three intervals passed")
        #expect(liveness.peers.isEmpty)
    }

    @Test("CURVE: a client key in the allow-list is accepted, another is refused")
    func curve() throws {
        #expect(ZMQContext.has("curve"), "libzmq lacks CURVE support")
        let ctx = try ZMQContext()
        let server = try CurveKeyPair.generate()
        let good = try CurveKeyPair.generate()
        let bad = try CurveKeyPair.generate()
        let router = try RouterEndpoint(
            context: ctx, bind: "tcp://127.0.0.1:*",
            security: .curveServer(keys: server, allowList: AllowList(keys: [good.publicKey])),
            options: fast)
        let intruder = try DealerEndpoint(
            context: ctx, connect: router.endpoint, identity: Array("bad".utf8),
            security: .curveClient(keys: bad, serverPublicKey: server.publicKey), options: fast)
        try intruder.send(.hello(Samples.hello))
        #expect(try receive(router, within: 1500) == nil, "a refused key got a message through")
        #expect((router.zap?.rejected ?? 0) >= 1)
        let member = try DealerEndpoint(
            context: ctx, connect: router.endpoint, identity: Array("good".utf8),
            security: .curveClient(keys: good, serverPublicKey: server.publicKey), options: fast)
        try member.send(.hello(Samples.hello))
        guard case .message(let peer, .hello)? = try receive(router, within: 3000) else {
            Issue.record("an allowed key was not let through")
            return
        }
        // Under CURVE the routing id is the node's public key, and the ZAP handler's User-Id says who it is.
        #expect(peer.publicKey == good.publicKey)
        #expect(peer.routingId == Array(good.publicKey.utf8))
        #expect((router.zap?.accepted ?? 0) >= 1)
        // A node pinning the wrong coordinator key never gets through either.
        let other = try CurveKeyPair.generate()
        let misled = try DealerEndpoint(
            context: ctx, connect: router.endpoint, identity: Array("misled".utf8),
            security: .curveClient(keys: good, serverPublicKey: other.publicKey), options: fast)
        try misled.send(.hello(Samples.hello))
        #expect(try receive(router, within: 1000) == nil)
    }

    @Test("frames above ZMQ_MAXMSGSIZE are refused; the socket keeps serving")
    func oversize() throws {
        let ctx = try ZMQContext()
        var small = fast
        small.maxMessageBytes = 2048
        let router = try RouterEndpoint(context: ctx, bind: "tcp://127.0.0.1:*", options: small)
        let big = try DealerEndpoint(context: ctx, connect: router.endpoint, identity: Array("big".utf8), options: fast)
        try big.sendRaw([UInt8](repeating: 7, count: 10_000))
        #expect(try receive(router, within: 1500) == nil, "an oversize frame was delivered")
        let ok = try DealerEndpoint(context: ctx, connect: router.endpoint, identity: Array("ok".utf8), options: fast)
        try ok.send(.heartbeat(sequence: 9, timestampMs: 9))
        guard case .message(let peer, .heartbeat(9, 9))? = try receive(router, within: 3000) else {
            Issue.record("router stopped serving after an oversize frame")
            return
        }
        #expect(peer.routingId == Array("ok".utf8))
    }

    @Test("plain mode warns off loopback only")
    func plainWarning() {
        #expect(Security.plainWarning(endpoint: "tcp://127.0.0.1:5555") == nil)
        #expect(Security.plainWarning(endpoint: "tcp://localhost:5555") == nil)
        #expect(Security.plainWarning(endpoint: "tcp://0.0.0.0:5555")?.contains("unencrypted") == true)
        #expect(Security.plainWarning(endpoint: "tcp://10.1.2.3:5555") != nil)
    }

    @Test("liveness and backoff state machines")
    func stateMachines() {
        var l = PeerLiveness<String>(intervalMs: 100, missedAllowed: 3)
        l.heard("a", at: 1000)
        l.heard("b", at: 1250)
        #expect(l.expire(at: 1300).isEmpty)
        #expect(l.expire(at: 1301) == ["a"])
        #expect(l.expire(at: 1551) == ["b"])
        var b = ReconnectBackoff(initialMs: 100, maxMs: 1000, seed: 3)
        let delays = (0..<8).map { _ in b.next() }
        for (i, d) in delays.enumerated() {
            let base = min(1000, 100 << UInt64(i))
            #expect(d <= base && d >= base - base / 4, "attempt \(i): \(d) not within jitter of \(base)")
        }
        b.reset()
        #expect(b.next() <= 100)
        // Two nodes draw different jitter: a fleet does not reconnect in lock-step.
        var x = ReconnectBackoff(
            initialMs: 1000, maxMs: 5000, seed: ReconnectBackoff.seed(identity: Array("node-1".utf8)))
        var y = ReconnectBackoff(
            initialMs: 1000, maxMs: 5000, seed: ReconnectBackoff.seed(identity: Array("node-2".utf8)))
        let xs = (0..<6).map { _ in x.next() }
        let ys = (0..<6).map { _ in y.next() }
        #expect(xs != ys, "two nodes drew the same reconnect delays \(xs)")
    }
}
