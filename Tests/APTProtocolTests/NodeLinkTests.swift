import Testing

@testable import APTProtocol

/// The node link's state machine, with time as numbers.
@Suite("Node link state machine")
struct NodeLinkTests {
    func link() -> NodeLink {
        NodeLink(
            heartbeatIntervalMs: 100, missedAllowed: 3, backoff: ReconnectBackoff(initialMs: 50, maxMs: 400, seed: 1))
    }

    @Test("HELLO on start, a heartbeat every interval while the coordinator talks")
    func heartbeats() {
        var l = link()
        #expect(l.start(at: 1000) == [.connect, .sendHello])
        #expect(l.tick(at: 1050) == [])
        #expect(l.nextDeadline == 1100)
        #expect(l.tick(at: 1100) == [.sendHeartbeat(sequence: 1)])
        l.received(at: 1150)
        #expect(l.tick(at: 1199) == [])
        #expect(l.tick(at: 1200) == [.sendHeartbeat(sequence: 2)])
        l.received(at: 1290)
        #expect(l.tick(at: 1300) == [.sendHeartbeat(sequence: 3)])
        #expect(l.state == .connected)
        #expect(l.reconnects == 0)
    }

    @Test("silence beyond the allowance disconnects, backs off, reconnects with HELLO")
    func silence() {
        var l = link()
        _ = l.start(at: 0)
        for t in stride(from: UInt64(100), through: 300, by: 100) {
            #expect(l.tick(at: t) == [.sendHeartbeat(sequence: t / 100)])
        }
        #expect(l.tick(at: 300) == [])
        #expect(l.tick(at: 301) == [.disconnect])
        guard case .waiting(let until) = l.state else {
            Issue.record("not waiting after silence: \(l.state)")
            return
        }
        #expect(until > 301 && until <= 351, "first backoff within 50 ms less jitter: \(until)")
        #expect(l.tick(at: until - 1) == [])
        l.received(at: until - 1)  // nothing can arrive on a closed socket; ignored
        #expect(l.tick(at: until) == [.connect, .sendHello])
        #expect(l.reconnects == 1)
        #expect(l.state == .connected)
        // Silent again: the second delay is longer (exponential backoff).
        #expect(l.tick(at: until + 301) == [.disconnect])
        guard case .waiting(let until2) = l.state else {
            Issue.record("not waiting")
            return
        }
        #expect(until2 - (until + 301) > 50)
    }

    @Test("messages read after a long pause count before silence is judged")
    func pauseThenDrain() {
        var l = link()
        _ = l.start(at: 0)
        // The node trained for 5 s; the coordinator's heartbeats queued up meanwhile. The driver reads them
        // (received) before it ticks: no disconnect.
        l.received(at: 5000)
        #expect(l.tick(at: 5000) == [.sendHeartbeat(sequence: 1)])
        #expect(l.state == .connected)
        // Had nothing been queued, the same tick would have judged the coordinator gone.
        var m = link()
        _ = m.start(at: 0)
        #expect(m.tick(at: 5000) == [.disconnect])
    }

    @Test("hearing from the coordinator resets the backoff")
    func backoffReset() {
        var l = link()
        _ = l.start(at: 0)
        var now: UInt64 = 0
        var delays: [UInt64] = []
        for _ in 0..<3 {
            now += 301
            #expect(l.tick(at: now) == [.disconnect])
            guard case .waiting(let until) = l.state else { return }
            delays.append(until - now)
            now = until
            #expect(l.tick(at: now) == [.connect, .sendHello])
        }
        #expect(delays[2] > delays[0])
        l.received(at: now + 10)
        now += 311
        #expect(l.tick(at: now) == [.disconnect])
        guard case .waiting(let until) = l.state else { return }
        #expect(until - now <= 50, "backoff not reset after the coordinator answered")
    }
}
