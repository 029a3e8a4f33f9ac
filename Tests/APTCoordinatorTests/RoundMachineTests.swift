import Testing

@testable import APTCoordinator

/// The rounds, with time and nodes as plain values.
@Suite("Round state machine")
struct RoundMachineTests {
    typealias A = RoundMachine.Action

    func machine(rounds: Int = 3, minNodes: Int = 2, fraction: Double = 1) -> RoundMachine {
        RoundMachine(configuration: .init(rounds: rounds, minNodes: minNodes, fraction: fraction, timeoutMs: 1000))
    }

    @Test("a round starts at quorum, completes when all answer, and the next starts at once")
    func normal() {
        var m = machine()
        #expect(m.nodeJoined("a", at: 0) == [])
        #expect(m.nodeJoined("b", at: 5) == [.sendTasks(round: 1, attempt: 0, nodes: ["a", "b"], timeoutMs: 1000)])
        #expect(
            m.update(from: "a", round: 1, attempt: 0, partial: false, at: 10) == [.accept(node: "a", partial: false)])
        #expect(
            m.update(from: "b", round: 1, attempt: 0, partial: true, at: 20) == [
                .accept(node: "b", partial: true),
                .completeRound(round: 1, attempt: 0, answered: ["a", "b"], missing: []),
                .sendTasks(round: 2, attempt: 0, nodes: ["a", "b"], timeoutMs: 1000),
            ])
        #expect(m.nextDeadline == 1020)
    }

    @Test("a node withdrawn before its work leaves the selection: not missing, and the round closes without it")
    func withdrawn() {
        // The first round waits for three nodes, so that all three are selected.
        var three = RoundMachine.Configuration(rounds: 3, minNodes: 2, fraction: 1, timeoutMs: 1000)
        three.startNodes = 3
        var m = RoundMachine(configuration: three)
        _ = m.nodeJoined("a", at: 0)
        _ = m.nodeJoined("b", at: 0)
        #expect(
            m.nodeJoined("c", at: 0) == [.sendTasks(round: 1, attempt: 0, nodes: ["a", "b", "c"], timeoutMs: 1000)])
        #expect(m.withdraw("c", at: 1) == [])
        _ = m.update(from: "a", round: 1, attempt: 0, partial: false, at: 2)
        let done = m.update(from: "b", round: 1, attempt: 0, partial: false, at: 3)
        #expect(done.contains(.completeRound(round: 1, attempt: 0, answered: ["a", "b"], missing: [])))
        // It is no longer eligible either: round 2 goes to a and b.
        #expect(done.contains(.sendTasks(round: 2, attempt: 0, nodes: ["a", "b"], timeoutMs: 1000)))
        // A node that drops out is still recorded as missing.
        var n = RoundMachine(configuration: three)
        _ = n.nodeJoined("a", at: 0)
        _ = n.nodeJoined("b", at: 0)
        _ = n.nodeJoined("c", at: 0)
        _ = n.nodeLeft("c", at: 1)
        _ = n.update(from: "a", round: 1, attempt: 0, partial: false, at: 2)
        let closed = n.update(from: "b", round: 1, attempt: 0, partial: false, at: 3)
        #expect(closed.contains(.completeRound(round: 1, attempt: 0, answered: ["a", "b"], missing: ["c"])))
    }

    @Test("late, duplicate, unselected and future updates are refused with their reason")
    func refusals() {
        var m = machine(rounds: 5, minNodes: 1)
        _ = m.nodeJoined("a", at: 0)  // round 1 starts with a alone
        _ = m.nodeJoined("b", at: 1)  // joins mid-round: eligible next round, not selected now
        #expect(
            m.update(from: "b", round: 1, attempt: 0, partial: false, at: 2) == [
                .refuse(node: "b", reason: .notSelected)
            ])
        #expect(
            m.update(from: "a", round: 2, attempt: 0, partial: false, at: 3) == [
                .refuse(node: "a", reason: .unknownRound)
            ])
        let done = m.update(from: "a", round: 1, attempt: 0, partial: false, at: 4)
        #expect(done.contains(.completeRound(round: 1, attempt: 0, answered: ["a"], missing: [])))
        // Round 2 selects both (fraction 1); a replay of round 1 is late.
        #expect(done.contains(.sendTasks(round: 2, attempt: 0, nodes: ["a", "b"], timeoutMs: 1000)))
        #expect(m.update(from: "a", round: 1, attempt: 0, partial: false, at: 5) == [.refuse(node: "a", reason: .late)])
        #expect(
            m.update(from: "b", round: 2, attempt: 0, partial: false, at: 6) == [.accept(node: "b", partial: false)])
        #expect(
            m.update(from: "b", round: 2, attempt: 0, partial: false, at: 7) == [.refuse(node: "b", reason: .duplicate)]
        )
    }

    @Test("at the deadline a round without quorum fails and is retried; with quorum it completes without the missing")
    func deadlines() {
        var m = machine(minNodes: 2)
        _ = m.nodeJoined("a", at: 0)
        _ = m.nodeJoined("b", at: 0)  // round 1, attempt 0: a and b
        _ = m.nodeJoined("c", at: 5)  // eligible from the next attempt on
        _ = m.update(from: "a", round: 1, attempt: 0, partial: false, at: 10)
        #expect(m.tick(at: 999) == [])
        let failed = m.tick(at: 1000)
        #expect(failed.first == .failRound(round: 1, attempt: 0, answered: 1, needed: 2))
        #expect(failed.contains(.sendTasks(round: 1, attempt: 1, nodes: ["a", "b", "c"], timeoutMs: 1000)))
        // An update of the failed attempt is late now.
        #expect(
            m.update(from: "b", round: 1, attempt: 0, partial: false, at: 1001) == [.refuse(node: "b", reason: .late)])
        _ = m.update(from: "a", round: 1, attempt: 1, partial: false, at: 1100)
        _ = m.update(from: "b", round: 1, attempt: 1, partial: false, at: 1200)
        let closed = m.tick(at: 2000)
        #expect(closed.first == .completeRound(round: 1, attempt: 1, answered: ["a", "b"], missing: ["c"]))
        #expect(closed.contains(.sendTasks(round: 2, attempt: 0, nodes: ["a", "b", "c"], timeoutMs: 1000)))
    }

    @Test("a node that leaves mid-round is dropped; the round closes when the others are in")
    func dropped() {
        var m = machine(rounds: 1, minNodes: 1)
        _ = m.nodeJoined("a", at: 0)
        _ = m.nodeJoined("b", at: 0)
        // With a quorum of one, round 1 started with a alone; it is the only round, so b is never asked.
        let r = m.update(from: "a", round: 1, attempt: 0, partial: false, at: 1)
        #expect(r.contains(.finished))
        #expect(m.state == .finished)
        // Every round is closed: an update for one of them is late; one for a round never opened is not.
        #expect(m.update(from: "b", round: 1, attempt: 0, partial: false, at: 2) == [.refuse(node: "b", reason: .late)])
        #expect(
            m.update(from: "b", round: 2, attempt: 0, partial: false, at: 2) == [
                .refuse(node: "b", reason: .noRoundOpen)
            ])
        var n = machine(rounds: 2, minNodes: 2)
        _ = n.nodeJoined("a", at: 0)
        _ = n.nodeJoined("b", at: 0)
        _ = n.nodeJoined("c", at: 0)  // waits for round 2
        _ = n.update(from: "a", round: 1, attempt: 0, partial: false, at: 1)
        let left = n.nodeLeft("b", at: 2)
        // Only a answered (1 < quorum 2): the attempt fails and is retried with the nodes still eligible.
        #expect(left.first == .failRound(round: 1, attempt: 0, answered: 1, needed: 2))
        #expect(left.contains(.sendTasks(round: 1, attempt: 1, nodes: ["a", "c"], timeoutMs: 1000)))
    }

    @Test("a fraction selects part of the fleet, rotating so that everyone takes part")
    func fraction() {
        var m = machine(rounds: 4, minNodes: 1, fraction: 0.5)
        var selected: [[String]] = []
        for id in ["a", "b", "c", "d"] {
            for a in m.nodeJoined(id, at: 0) { if case .sendTasks(_, _, let nodes, _) = a { selected.append(nodes) } }
        }
        // Round 1 started with "a" alone (quorum 1). Then each round takes 2 of the 4.
        for round in 1...3 {
            guard case .collecting(_, _, _, let s, _) = m.state else { break }
            var actions: [A] = []
            for node in s.sorted() { actions += m.update(from: node, round: round, attempt: 0, partial: false, at: 1) }
            for a in actions { if case .sendTasks(_, _, let nodes, _) = a { selected.append(nodes) } }
        }
        #expect(selected.dropFirst().allSatisfy { $0.count == 2 })
        #expect(Set(selected.dropFirst().flatMap { $0 }) == ["a", "b", "c", "d"])
    }

    @Test("over-selection: a third more are asked, the round closes when the target is in, a straggler is late")
    func overSelection() {
        var m = RoundMachine(
            configuration: .init(rounds: 2, minNodes: 3, fraction: 0.5, timeoutMs: 1000, overSelection: 0.34))
        var started: [A] = []
        for id in ["a", "b", "c", "d", "e", "f"] { started += m.nodeJoined(id, at: 0) }
        // 3 of the 3 joined at first: target 3, over-selected to ⌈3 × 1.34⌉ = 5, but only 3 are eligible.
        guard case .sendTasks(1, 0, let first, _) = started.first else {
            Issue.record("no round started: \(started)")
            return
        }
        #expect(first.count == 3 && m.target == 3)
        for node in first { _ = m.update(from: node, round: 1, attempt: 0, partial: false, at: 1) }
        // Round 2 over all six: target max(3, ⌈0.5 × 6⌉) = 3, selected ⌈3 × 1.34⌉ = 5.
        guard case .collecting(2, 0, _, let selected, _) = m.state else {
            Issue.record("round 2 did not start: \(m.state)")
            return
        }
        #expect(selected.count == 5 && m.target == 3)
        let order = selected.sorted()
        _ = m.update(from: order[0], round: 2, attempt: 0, partial: false, at: 2)
        _ = m.update(from: order[1], round: 2, attempt: 0, partial: false, at: 2)
        let third = m.update(from: order[2], round: 2, attempt: 0, partial: false, at: 2)
        #expect(
            third.contains(
                .completeRound(round: 2, attempt: 0, answered: Array(order[0..<3]), missing: Array(order[3...]))))
        #expect(m.state == .finished)
        #expect(
            m.update(from: order[3], round: 2, attempt: 0, partial: false, at: 3) == [
                .refuse(node: order[3], reason: .late)
            ])
    }

    @Test("the first round waits for the fleet (or its timeout); later rounds start at quorum")
    func waitsForTheFleet() {
        var config = RoundMachine.Configuration(rounds: 3, minNodes: 1, timeoutMs: 1000)
        config.startNodes = 3
        config.startTimeoutMs = 500
        var m = RoundMachine(configuration: config)
        #expect(m.nodeJoined("a", at: 100).isEmpty && m.nodeJoined("b", at: 200).isEmpty, "quorum 1, but it waits")
        #expect(m.tick(at: 599).isEmpty)
        #expect(
            m.nodeJoined("c", at: 300) == [.sendTasks(round: 1, attempt: 0, nodes: ["a", "b", "c"], timeoutMs: 1000)])
        // With only two of three, the wait ends 500 ms after the first joined.
        var late = RoundMachine(configuration: config)
        _ = late.nodeJoined("a", at: 100)
        _ = late.nodeJoined("b", at: 150)
        #expect(late.tick(at: 599).isEmpty)
        #expect(late.tick(at: 600) == [.sendTasks(round: 1, attempt: 0, nodes: ["a", "b"], timeoutMs: 1000)])
        // Round 2 needs only the quorum.
        for node in ["a", "b"] { _ = late.update(from: node, round: 1, attempt: 0, partial: false, at: 700) }
        #expect(late.state == .collecting(round: 2, attempt: 0, deadline: 1700, selected: ["a", "b"], answered: []))
    }

    @Test("a restarted coordinator resumes at the round after its last completed one")
    func resume() {
        var m = RoundMachine(configuration: .init(rounds: 5, minNodes: 1, timeoutMs: 100), firstRound: 4)
        #expect(m.nodeJoined("a", at: 0) == [.sendTasks(round: 4, attempt: 0, nodes: ["a"], timeoutMs: 100)])
        #expect(
            RoundMachine(configuration: .init(rounds: 5, minNodes: 1, timeoutMs: 100), firstRound: 6).state == .finished
        )
    }
}
