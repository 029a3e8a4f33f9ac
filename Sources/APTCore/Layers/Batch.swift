/// A batch of float values flowing between layers: `count` samples, each of `shape` (e.g. `[C, H, W]`).
public struct Batch: Sendable {
    /// Row-major values, sample after sample.
    public var values: [Float]
    /// Number of samples.
    public var count: Int
    /// Per-sample shape.
    public var shape: [Int]

    /// Creates a batch; the value count must match.
    public init(values: [Float], count: Int, shape: [Int]) {
        precondition(values.count == count * shape.reduce(1, *), "batch values do not match \(count)×\(shape)")
        self.values = values
        self.count = count
        self.shape = shape
    }

    /// Elements per sample.
    public var sampleSize: Int { shape.reduce(1, *) }
}
