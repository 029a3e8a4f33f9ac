/// The coordinator's rounds as a pure state machine: events in (nodes joining and leaving, updates arriving,
/// time passing), actions out (send tasks, fold or refuse an update, close a round), no I/O inside. The thread
/// that owns the ROUTER socket feeds it and performs its actions; tests drive it with numbers.
///
/// The rule: a round starts when at least `minNodes` nodes are eligible; its target is `max(minNodes,
/// ⌈fraction × eligible⌉)` updates, and it selects ⌈target × (1 + overSelection)⌉ of the eligible nodes (at most
/// all; rotating through them by round, so all take part over time) and gives them `timeoutMs`. Updates for the
/// current round and attempt from selected nodes are accepted once each (partial ones too: they count with their
/// real samples); anything else is refused with a reason. The round completes when every selected node has
/// answered or dropped out, when `target` updates are in if it over-selected (the stragglers' updates then
/// arrive late: recorded, not averaged; Bonawitz et al., 2019), or at the deadline if at least `minNodes`
/// answered; otherwise it fails for lack of quorum and is retried as the next attempt of the same round. After
/// `rounds` completed rounds the machine is finished.
public struct RoundMachine: Sendable {
    /// A node, as the coordinator keys it (its CURVE key, or its name in plain mode).
    public typealias Node = String

    /// What configures the rounds.
    public struct Configuration: Hashable, Sendable {
        /// Rounds to complete.
        public var rounds: Int
        /// Fewest updates a round needs.
        public var minNodes: Int
        /// Fraction of the eligible nodes to select, (0, 1].
        public var fraction: Double
        /// How long selected nodes have, ms.
        public var timeoutMs: UInt64
        /// Extra fraction of nodes selected beyond the target, [0, 1] (0: none).
        public var overSelection: Double
        /// Eligible nodes the first round waits for (beyond `minNodes`), at most `startTimeoutMs` after the
        /// first node joined; 0: the first round starts at quorum like the others.
        public var startNodes = 0
        /// How long the first round waits for `startNodes`, ms.
        public var startTimeoutMs: UInt64 = 30_000

        /// Creates a configuration.
        public init(rounds: Int, minNodes: Int, fraction: Double = 1, timeoutMs: UInt64, overSelection: Double = 0) {
            precondition(
                rounds >= 1 && minNodes >= 1 && fraction > 0 && fraction <= 1 && (0...1).contains(overSelection),
                "invalid round configuration")
            self.rounds = rounds
            self.minNodes = minNodes
            self.fraction = fraction
            self.timeoutMs = timeoutMs
            self.overSelection = overSelection
        }
    }

    /// Why an update was not accepted.
    public enum Refusal: String, Hashable, Sendable {
        /// No round is collecting.
        case noRoundOpen = "no round is open"
        /// It answers an earlier round or attempt (arrived after its round closed).
        case late = "late: its round or attempt is closed"
        /// It names a round or attempt that has not started.
        case unknownRound = "names a round that has not started"
        /// The node was not selected for this round.
        case notSelected = "node not selected for this round"
        /// The node already sent this round's update (a replay).
        case duplicate = "duplicate update for this round and attempt"
    }

    /// What the driver must do.
    public enum Action: Hashable, Sendable {
        /// Send TASK for `round`/`attempt` to these nodes, with `timeoutMs`.
        case sendTasks(round: Int, attempt: Int, nodes: [Node], timeoutMs: UInt64)
        /// Fold this update into the aggregate (`partial` when it did less than asked).
        case accept(node: Node, partial: Bool)
        /// Refuse this update, recording why.
        case refuse(node: Node, reason: Refusal)
        /// Close the round: aggregate and record it; `answered` were folded in, `missing` never answered.
        case completeRound(round: Int, attempt: Int, answered: [Node], missing: [Node])
        /// Record the attempt as failed (too few updates); it is retried.
        case failRound(round: Int, attempt: Int, answered: Int, needed: Int)
        /// Every round is done.
        case finished
    }

    /// Where the rounds are.
    public enum State: Hashable, Sendable {
        /// Waiting for enough eligible nodes to start `round`/`attempt`.
        case waiting(round: Int, attempt: Int)
        /// Collecting updates until `deadline` (ms).
        case collecting(round: Int, attempt: Int, deadline: UInt64, selected: Set<Node>, answered: Set<Node>)
        /// Every round completed.
        case finished
    }

    /// The configuration.
    public let configuration: Configuration
    /// The state.
    public private(set) var state: State
    /// Nodes connected and able to take part (not retired).
    public private(set) var eligible: Set<Node> = []
    /// Nodes that dropped out of the collecting round.
    private var dropped: Set<Node> = []
    /// Updates the collecting round wants (fewer than selected when it over-selected).
    public private(set) var target = 0
    /// When the first node joined (the first round's wait for `startNodes` counts from it).
    private var firstJoinMs: UInt64?
    /// Whether a round has started since this machine was made.
    private var started = false

    /// A machine about to start at round `firstRound` (a restarted coordinator resumes after its last
    /// completed round).
    public init(configuration: Configuration, firstRound: Int = 1) {
        self.configuration = configuration
        state = firstRound > configuration.rounds ? .finished : .waiting(round: firstRound, attempt: 0)
    }

    /// A node became eligible (it said HELLO and has budget left).
    public mutating func nodeJoined(_ node: Node, at now: UInt64) -> [Action] {
        eligible.insert(node)
        if firstJoinMs == nil { firstJoinMs = now }
        return startIfReady(now: now)
    }

    /// A node left or stopped being eligible (gone silent, retired).
    public mutating func nodeLeft(_ node: Node, at now: UInt64) -> [Action] {
        eligible.remove(node)
        guard case .collecting(_, _, _, let selected, let answered) = state, selected.contains(node),
            !answered.contains(node)
        else { return [] }
        dropped.insert(node)
        return closeIfAllIn(now: now)
    }

    /// `node` leaves the fleet before it was given the collecting round's work (the coordinator retired it while
    /// planning its policy): it leaves the round's selection instead of counting as dropped from it.
    public mutating func withdraw(_ node: Node, at now: UInt64) -> [Action] {
        eligible.remove(node)
        guard case .collecting(let r, let a, let deadline, var selected, let answered) = state,
            selected.contains(node), !answered.contains(node)
        else { return [] }
        selected.remove(node)
        dropped.remove(node)
        state = .collecting(round: r, attempt: a, deadline: deadline, selected: selected, answered: answered)
        return closeIfAllIn(now: now)
    }

    /// An UPDATE for `round`/`attempt` arrived from `node`.
    public mutating func update(from node: Node, round: Int, attempt: Int, partial: Bool, at now: UInt64) -> [Action] {
        switch state {
        case .waiting(let r, let a), .collecting(let r, let a, _, _, _):
            if round < r || (round == r && attempt < a) { return [.refuse(node: node, reason: .late)] }
            if round > r || attempt > a { return [.refuse(node: node, reason: .unknownRound)] }
        case .finished:
            // Every round is closed: one of them is late, a later one was never opened.
            return [.refuse(node: node, reason: round <= configuration.rounds ? .late : .noRoundOpen)]
        }
        guard case .collecting(let r, let a, let deadline, let selected, var answered) = state else {
            return [.refuse(node: node, reason: .noRoundOpen)]
        }
        guard selected.contains(node), !dropped.contains(node) else {
            return [.refuse(node: node, reason: .notSelected)]
        }
        guard !answered.contains(node) else { return [.refuse(node: node, reason: .duplicate)] }
        answered.insert(node)
        state = .collecting(round: r, attempt: a, deadline: deadline, selected: selected, answered: answered)
        return [.accept(node: node, partial: partial)] + closeIfAllIn(now: now)
    }

    /// Time passed: closes a round at its deadline.
    public mutating func tick(at now: UInt64) -> [Action] {
        switch state {
        case .collecting(_, _, let deadline, _, _) where now >= deadline: return close(now: now)
        case .waiting: return startIfReady(now: now)
        default: return []
        }
    }

    /// When `tick` next has something to do, ms.
    public var nextDeadline: UInt64? {
        if case .collecting(_, _, let deadline, _, _) = state { return deadline }
        return nil
    }

    private mutating func startIfReady(now: UInt64) -> [Action] {
        var quorum = configuration.minNodes
        if !started, configuration.startNodes > quorum, now < (firstJoinMs ?? now) + configuration.startTimeoutMs {
            quorum = configuration.startNodes
        }
        guard case .waiting(let round, let attempt) = state, eligible.count >= quorum else { return [] }
        started = true
        let pool = eligible.sorted()
        let wanted = max(
            configuration.minNodes, Int((configuration.fraction * Double(pool.count)).rounded(.up)))
        let n = min(pool.count, Int((Double(wanted) * (1 + configuration.overSelection)).rounded(.up)))
        target = min(wanted, n)
        // Rotate through the pool by round so every node takes part over time.
        let start = ((round - 1) * n) % pool.count
        let chosen = (0..<n).map { pool[(start + $0) % pool.count] }
        dropped = []
        state = .collecting(
            round: round, attempt: attempt, deadline: now + configuration.timeoutMs, selected: Set(chosen),
            answered: [])
        return [.sendTasks(round: round, attempt: attempt, nodes: chosen, timeoutMs: configuration.timeoutMs)]
    }

    private mutating func closeIfAllIn(now: UInt64) -> [Action] {
        guard case .collecting(_, _, _, let selected, let answered) = state,
            answered.count + dropped.count >= selected.count || (selected.count > target && answered.count >= target)
        else { return [] }
        return close(now: now)
    }

    private mutating func close(now: UInt64) -> [Action] {
        guard case .collecting(let round, let attempt, _, let selected, let answered) = state else { return [] }
        var actions: [Action]
        if answered.count >= configuration.minNodes {
            actions = [
                .completeRound(
                    round: round, attempt: attempt, answered: answered.sorted(),
                    missing: selected.subtracting(answered).sorted())
            ]
            state = round >= configuration.rounds ? .finished : .waiting(round: round + 1, attempt: 0)
            if state == .finished { actions.append(.finished) }
        } else {
            actions = [
                .failRound(round: round, attempt: attempt, answered: answered.count, needed: configuration.minNodes)
            ]
            state = .waiting(round: round, attempt: attempt + 1)
        }
        return actions + startIfReady(now: now)
    }
}
