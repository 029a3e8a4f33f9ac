/// What a node must remember across restarts and power loss: what it has spent, what it has reserved for the
/// round in progress, and where it is in the run. Kept in `--state-dir` by `NodeStateStore`.
///
/// Spending is written ahead: before a round the node records the round's allowance as committed; after it,
/// it settles the commitment to the energy really spent. A node restarted with a commitment outstanding (it
/// crashed mid-round) counts the whole commitment as spent, so it can never spend the same budget twice.
public struct NodeState: Codable, Hashable, Sendable {
    /// Format of this file.
    public var version: Int = 1
    /// The node's identity (CURVE public key or name), so a state dir is never used by another node.
    public var identity: String
    /// Energy spent in settled rounds, J.
    public var spentJ: Double = 0
    /// Energy reserved for the round in progress, J (0 between rounds).
    public var committedJ: Double = 0
    /// The round and attempt the commitment is for.
    public var committedRound: Int?
    /// The last round whose update was sent.
    public var lastRound: Int = 0
    /// The round of the global model the node last trained from.
    public var modelRound: Int = 0
    /// The node's name (`--name`), which lets a node whose CURVE key was rotated keep its state.
    public var name: String?
    /// Identities (keys) this node had before a key rotation, oldest first.
    public var previousIdentities: [String]?
    /// Energy charged before the current identity began (at its key's rotation), J; the coordinator's ledger
    /// counts the current identity from there.
    public var chargedBeforeIdentityJ: Double?

    /// A fresh state for `identity`, optionally with its name.
    public init(identity: String, name: String? = nil) {
        self.identity = identity
        self.name = name
    }

    /// Takes on `newIdentity` after a key rotation: the spending stays, the old identity is remembered.
    public mutating func rotate(to newIdentity: String) {
        previousIdentities = (previousIdentities ?? []) + [identity]
        identity = newIdentity
        chargedBeforeIdentityJ = chargedJ
    }

    /// Energy to count as gone: settled spending plus any outstanding commitment.
    public var chargedJ: Double { spentJ + committedJ }

    /// Reserves `allowanceJ` for `round` before training it.
    public mutating func commit(round: Int, allowanceJ: Double) {
        precondition(allowanceJ >= 0 && allowanceJ.isFinite, "commit: allowance \(allowanceJ)")
        precondition(committedJ == 0, "commit while round \(committedRound ?? -1) is still committed")
        committedJ = allowanceJ
        committedRound = round
    }

    /// Settles the commitment to `spentJ` really spent (at most the commitment) and records the round as sent.
    public mutating func settle(spentJ spent: Double) {
        precondition(spent >= 0 && spent <= committedJ * (1 + 1e-9), "settle: spent \(spent) of \(committedJ)")
        spentJ += spent
        lastRound = committedRound ?? lastRound
        committedJ = 0
        committedRound = nil
    }

    /// After a crash: an outstanding commitment is counted as spent in full.
    public mutating func recoverAfterCrash() {
        guard committedJ > 0 else { return }
        spentJ += committedJ
        committedJ = 0
        committedRound = nil
    }
}
