/// A batch flowing between layers: `count` samples, each of `shape` (e.g. `[C, H, W]`), held as float values
/// or, for a fixed-point network's input, as activation codes (then `values` is empty).
public struct Batch: Sendable {
    /// Row-major values, sample after sample (empty when the batch is held as `codes`).
    public var values: [Float]
    /// The batch as activation codes, shape `[count] + shape`, when it is held that way (a fixed-point network's
    /// input batch: its first layer takes the codes as they are, and no float copy of the batch exists).
    public var codes: FixedPointTensor?
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
        self.codes = nil
    }

    /// A batch held as activation codes (`codes.count == count · ∏shape`).
    public init(codes: FixedPointTensor, count: Int, shape: [Int]) {
        precondition(codes.count == count * shape.reduce(1, *), "batch codes do not match \(count)×\(shape)")
        self.values = []
        self.count = count
        self.shape = shape
        self.codes = codes.reshaped([count] + shape)
    }

    /// The batch as error codes still to be made an image at a time (a pooling layer's input error, handed to
    /// the convolution below it).
    var pooledError: PooledErrorCodes?

    /// A batch of error codes made an image at a time.
    init(pooledError: PooledErrorCodes, shape: [Int]) {
        precondition(pooledError.imageSize == shape.reduce(1, *), "pooled error codes do not match \(shape)")
        self.values = []
        self.count = pooledError.count
        self.shape = shape
        self.codes = nil
        self.pooledError = pooledError
    }

    /// Error codes with a scale per image (a weighted layer's input error, handed to the pooling layer beneath
    /// it).
    var imageErrors: ImageErrorCodes?

    /// A batch of error codes with a scale per image.
    init(imageErrors: ImageErrorCodes, shape: [Int]) {
        precondition(imageErrors.imageSize == shape.reduce(1, *), "image error codes do not match \(shape)")
        self.values = []
        self.count = imageErrors.count
        self.shape = shape
        self.codes = nil
        self.imageErrors = imageErrors
    }

    /// The batch's values as floats, handed over: its float values, or its codes dequantised.
    mutating func takeValues() -> [Float] {
        if let c = codes.take() { return c.dequantized() }
        var v: [Float] = []
        swap(&v, &values)
        return v
    }

    /// The batch's codes as held (nil for a float batch). Error codes with a scale per image are not codes of
    /// one format: only a convolution takes them (`pooledError`), or a pooling layer (`imageErrors`).
    mutating func takeCodes() -> FixedPointTensor? {
        precondition(pooledError == nil && imageErrors == nil, "Batch: per-image error codes taken as one tensor")
        return codes.take()?.reshaped([count] + shape)
    }

    /// Elements per sample.
    public var sampleSize: Int { shape.reduce(1, *) }
}
