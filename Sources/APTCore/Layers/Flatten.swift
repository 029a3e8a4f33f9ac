/// Reshapes `[C, H, W]` samples to flat vectors (no data movement).
public struct Flatten: Layer {
    private var inputShape: [Int] = []
    /// Creates the layer.
    public init() {}
    public var name: String { "flatten" }
    public func outputShape(for input: [Int]) -> [Int] { [input.reduce(1, *)] }
    public var savedBytes: Int { 0 }
    public mutating func releaseSaved() {}
    public mutating func forward(_ x: consuming Batch, context: inout StepContext) -> Batch {
        inputShape = x.shape
        if let codes = x.codes { return Batch(codes: codes, count: x.count, shape: [x.sampleSize]) }
        return Batch(values: x.values, count: x.count, shape: [x.sampleSize])
    }
    public mutating func backward(_ dy: consuming Batch, needsInputGradient: Bool, context: inout StepContext) -> Batch?
    {
        guard needsInputGradient else { return nil }
        var error = dy
        if let codes = error.imageErrors.take() { return Batch(imageErrors: codes, shape: inputShape) }
        if let codes = error.takeCodes() {
            return Batch(codes: codes, count: error.count, shape: inputShape)
        }
        return Batch(values: error.values, count: error.count, shape: inputShape)
    }
}
