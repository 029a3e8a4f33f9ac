/// A place in a round where a crash test kills the coordinator (`APT_COORD_CRASH_AT=STAGE:ROUND`).
public struct CrashPoint: Hashable, Sendable {
    /// Where in the round.
    public enum Stage: String, Hashable, Sendable, CaseIterable {
        /// Right after the round's TASKs went out, while its updates are being collected.
        case collecting
        /// After the round's deltas were aggregated into the global model, before anything is written.
        case aggregating
        /// Inside the ledger transaction that records the round, before it commits.
        case committing
        /// Right after that transaction committed.
        case committed
    }

    /// Where in the round.
    public var stage: Stage
    /// Which round.
    public var round: Int

    /// A crash point.
    public init(stage: Stage, round: Int) {
        self.stage = stage
        self.round = round
    }

    /// Parses `STAGE:ROUND` (e.g. `aggregating:2`); nil for anything else.
    public init?(parsing text: String) {
        let parts = text.split(separator: ":", omittingEmptySubsequences: false)
        guard parts.count == 2, let stage = Stage(rawValue: String(parts[0])), let round = Int(parts[1]), round >= 1
        else { return nil }
        self.init(stage: stage, round: round)
    }
}
