import APTCore

/// Bounds a decoder enforces before allocating anything sized by the input.
///
/// A decoded message holds its codes bit-packed as on the wire and its sparse indices as `UInt32`, so it
/// never occupies more than 4 × its wire size plus a constant per tensor (see `docs/protocol.md`,
/// "Limits"). A coordinator serving one model uses `DecodeLimits(serving:)`, which refuses any frame larger
/// than that model's largest legal encoding from its header alone, before the payload is even checksummed.
public struct DecodeLimits: Hashable, Sendable {
    /// Largest payload accepted, bytes.
    public var maxPayloadBytes: Int
    /// Largest element count of one tensor.
    public var maxTensorElements: Int
    /// Most tensors in one message.
    public var maxTensors: Int

    /// Creates limits.
    public init(
        maxPayloadBytes: Int = DecodeLimits.standardPayloadBytes, maxTensorElements: Int = ModelSpec.maxElements,
        maxTensors: Int = 2 * ModelSpec.maxWeightedLayers
    ) {
        self.maxPayloadBytes = maxPayloadBytes
        self.maxTensorElements = maxTensorElements
        self.maxTensors = maxTensors
    }

    /// 64 MiB less the 16-byte header: the default `ZMQ_MAXMSGSIZE` holds exactly one such frame.
    public static let standardPayloadBytes = (64 << 20) - Frame.headerSize

    /// The defaults: payloads up to 64 MiB − 16 bytes, 2^24 elements per tensor, 1,024 tensors — the largest
    /// that any valid model can need.
    public static let standard = DecodeLimits()

    /// Bytes of the fixed fields, strings and blocks of any message besides its tensors, at most: three full
    /// strings (HELLO: name, profile name and description), the fixed fields, and a POLICY or LEDGER block.
    static func overheadBytes(weightedLayers: Int) -> Int { 3 * 65_537 + 4096 + 16 * weightedLayers }

    /// The largest encoding of one tensor of `count` elements: its 12-byte header, and either dense values
    /// (at most 4 bytes each, binary32) or a sparse form with `k ≤ count` (a 4-byte k, at most one varint byte
    /// per element skipped or kept, at most 4 bytes per kept value) — at most `16 + 5·count` bytes.
    static func maxTensorBytes(count: Int) -> Int { 16 + 5 * count }

    /// Limits for frames about `model`: no more tensors than it has, none larger than its largest, and no
    /// payload larger than the model's largest legal TASK or UPDATE.
    public init(serving model: ModelSpec) throws(ConfigurationError) {
        let counts = try model.parameterCounts()
        let tensors = counts.reduce(0) { $0 + DecodeLimits.maxTensorBytes(count: $1) }
        self.init(
            maxPayloadBytes: min(
                DecodeLimits.standardPayloadBytes, tensors + DecodeLimits.overheadBytes(weightedLayers: counts.count)),
            maxTensorElements: counts.max() ?? 0, maxTensors: counts.count)
    }
}
