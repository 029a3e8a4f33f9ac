import Foundation

/// What one fleet run achieved and cost, read from its ledger: the figures the fleet benchmark sets side by side
/// for APT and float32 FedAvg. Energy is the engine's model (one pricing rule for every precision); memory is
/// each node's own report of its peak training memory; bytes are the frames as sent.
public struct FleetRunSummary: Sendable, Equatable, Codable {
    /// Rounds completed.
    public var rounds: Int
    /// Global accuracy after each completed round, in order (rounds without an evaluation are left out).
    public var accuracies: [Double]
    /// Energy every node spent training, J (updates and the energy of refused or late ones).
    public var fleetEnergyJ: Double
    /// The largest peak training memory any node reported, bytes.
    public var peakNodeMemoryBytes: Int
    /// Mean bytes of one UPDATE frame (a node's uplink in a round it answered).
    public var bytesUpPerNodeRound: Double
    /// Mean bytes of one TASK frame (a node's downlink in a round it was sent work).
    public var bytesDownPerNodeRound: Double
    /// Wall time from the first round's start to the last round's end, divided by the rounds, seconds.
    public var wallPerRoundS: Double
    /// Each completed round's latency, from its start (TASKs going out) to its commit, seconds.
    public var roundSeconds: [Double]
    /// Updates (ok or partial) the completed rounds folded in.
    public var updates: Int
    /// UPDATE bytes the completed rounds received.
    public var bytesUp: Int

    /// Global accuracy after the last round (0 when none was evaluated).
    public var finalAccuracy: Double { accuracies.last ?? 0 }
    /// The best global accuracy of any round.
    public var bestAccuracy: Double { accuracies.max() ?? 0 }

    /// The mean global accuracy of the last `rounds` evaluated rounds (all of them when there are fewer): steadier
    /// than the last round's alone on a split where accuracy swings from round to round.
    public func meanAccuracy(lastRounds rounds: Int) -> Double {
        let tail = accuracies.suffix(max(1, rounds))
        return tail.isEmpty ? 0 : tail.reduce(0, +) / Double(tail.count)
    }

    /// The first round (1-based) whose global accuracy reached `target`, or nil.
    public func roundsToReach(_ target: Double) -> Int? {
        accuracies.firstIndex { $0 >= target }.map { $0 + 1 }
    }

    /// The summary of the ledger `store` holds.
    public init(ledger store: LedgerStore) throws {
        let db = store.database
        let completed = try db.rows(
            """
            SELECT r.number, r.accuracy, r.started_at, r.ended_at, r.bytes_up,
                   (SELECT COUNT(*) FROM participations p WHERE p.round = r.number AND p.attempt = r.attempt
                    AND p.status IN ('ok', 'partial')) AS updates
            FROM rounds r WHERE r.status = 'completed' ORDER BY r.number
            """)
        rounds = completed.count
        accuracies = completed.compactMap { $0["accuracy"].double }
        updates = completed.reduce(0) { $0 + ($1["updates"].int ?? 0) }
        bytesUp = completed.reduce(0) { $0 + ($1["bytes_up"].int ?? 0) }
        let energy = try db.rows(
            """
            SELECT (SELECT COALESCE(SUM(energy_j), 0) FROM participations)
                 + (SELECT COALESCE(SUM(energy_j), 0) FROM events) AS j
            """)
        fleetEnergyJ = energy.first?["j"].double ?? 0
        let traffic = try db.rows(
            """
            SELECT MAX(peak_memory_bytes) AS peak,
                   AVG(CASE WHEN status IN ('ok', 'partial') THEN bytes_up END) AS up,
                   AVG(CASE WHEN bytes_down > 0 THEN bytes_down END) AS down
            FROM participations
            """)
        peakNodeMemoryBytes = traffic.first?["peak"].int ?? 0
        bytesUpPerNodeRound = traffic.first?["up"].double ?? 0
        bytesDownPerNodeRound = traffic.first?["down"].double ?? 0
        let parse = ISO8601DateFormatter()
        parse.formatOptions = [.withInternetDateTime, .withFractionalSeconds]
        roundSeconds = completed.compactMap { r in
            guard let a = r["started_at"].string.flatMap(parse.date(from:)),
                let b = r["ended_at"].string.flatMap(parse.date(from:))
            else { return nil }
            return b.timeIntervalSince(a)
        }
        if let first = completed.first?["started_at"].string.flatMap(parse.date(from:)),
            let last = completed.last?["ended_at"].string.flatMap(parse.date(from:)), rounds > 0
        {
            wallPerRoundS = last.timeIntervalSince(first) / Double(rounds)
        } else {
            wallPerRoundS = 0
        }
    }
}
