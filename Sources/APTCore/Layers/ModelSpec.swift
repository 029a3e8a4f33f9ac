/// One layer of a model description.
public enum LayerSpec: Hashable, Sendable, Codable {
    /// Fully connected layer with `outputs` features.
    case linear(outputs: Int)
    /// Convolution with `outChannels` square `kernel`s.
    case conv(outChannels: Int, kernel: Int, stride: Int, padding: Int)
    /// Rectified linear unit.
    case relu
    /// Max pooling with a `size × size` window and equal stride.
    case maxPool(size: Int)
    /// Flatten `[C, H, W]` to a vector.
    case flatten

    private enum CodingKeys: String, CodingKey { case type, outputs, channels, kernel, stride, padding, size }

    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        let type = try c.decode(String.self, forKey: .type)
        switch type {
        case "linear": self = .linear(outputs: try c.decode(Int.self, forKey: .outputs))
        case "conv":
            self = .conv(
                outChannels: try c.decode(Int.self, forKey: .channels), kernel: try c.decode(Int.self, forKey: .kernel),
                stride: try c.decodeIfPresent(Int.self, forKey: .stride) ?? 1,
                padding: try c.decodeIfPresent(Int.self, forKey: .padding) ?? 0)
        case "relu": self = .relu
        case "maxpool": self = .maxPool(size: try c.decodeIfPresent(Int.self, forKey: .size) ?? 2)
        case "flatten": self = .flatten
        default:
            throw DecodingError.dataCorruptedError(
                forKey: .type, in: c,
                debugDescription: "unknown layer type '\(type)' (expected linear, conv, relu, maxpool or flatten)")
        }
    }

    public func encode(to encoder: any Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        switch self {
        case .linear(let o):
            try c.encode("linear", forKey: .type)
            try c.encode(o, forKey: .outputs)
        case .conv(let ch, let k, let s, let p):
            try c.encode("conv", forKey: .type)
            try c.encode(ch, forKey: .channels)
            try c.encode(k, forKey: .kernel)
            try c.encode(s, forKey: .stride)
            try c.encode(p, forKey: .padding)
        case .relu: try c.encode("relu", forKey: .type)
        case .maxPool(let s):
            try c.encode("maxpool", forKey: .type)
            try c.encode(s, forKey: .size)
        case .flatten: try c.encode("flatten", forKey: .type)
        }
    }
}

/// A sequential model: input shape, layers, number of classes. Serialisable as JSON, e.g.
/// `{"name":"tiny","input":[1,28,28],"classes":10,"layers":[{"type":"flatten"},{"type":"linear","outputs":10}]}`.
public struct ModelSpec: Hashable, Sendable, Codable {
    /// Name of the model.
    public var name: String
    /// Per-sample input shape `[C, H, W]`.
    public var input: [Int]
    /// Number of output classes (the last layer's width).
    public var classes: Int
    /// The layers, in order.
    public var layers: [LayerSpec]

    /// Creates a spec.
    public init(name: String, input: [Int], classes: Int, layers: [LayerSpec]) {
        self.name = name
        self.input = input
        self.classes = classes
        self.layers = layers
    }

    /// 784-256-128-10 multilayer perceptron.
    public static let mlp = ModelSpec(
        name: "mlp", input: [1, 28, 28], classes: 10,
        layers: [.flatten, .linear(outputs: 256), .relu, .linear(outputs: 128), .relu, .linear(outputs: 10)])

    /// LeNet-5 style: conv5x5x6 (pad 2) → pool → conv5x5x16 → pool → 120 → 84 → 10.
    public static let lenet = ModelSpec(
        name: "lenet", input: [1, 28, 28], classes: 10,
        layers: [
            .conv(outChannels: 6, kernel: 5, stride: 1, padding: 2), .relu, .maxPool(size: 2),
            .conv(outChannels: 16, kernel: 5, stride: 1, padding: 0), .relu, .maxPool(size: 2),
            .flatten, .linear(outputs: 120), .relu, .linear(outputs: 84), .relu, .linear(outputs: 10),
        ])

    /// Largest size of one dimension: an input size, channels, linear outputs, classes.
    public static let maxDimension = 1 << 16
    /// Largest element count of any one tensor: a parameter tensor, or one sample's activations at any layer.
    public static let maxElements = 1 << 24
    /// Largest number of parameter elements in the whole model.
    public static let maxParameters = 1 << 24
    /// Most layers.
    public static let maxLayers = 1024
    /// Most weighted (linear or conv) layers: each has a weight and a bias tensor, and a message carries at most
    /// 1,024 tensors.
    public static let maxWeightedLayers = 512
    /// Largest convolution kernel, stride or padding (one byte on the wire).
    public static let maxKernel = 255
    /// Largest output positions (height × width) of one convolution.
    public static let maxConvPositions = 1 << 16
    /// Largest max-pooling window side (its arg-max must fit in a byte: 15 × 15 < 256).
    public static let maxPoolSize = 15

    /// The built-in models by name.
    public static let builtIn: [String: ModelSpec] = ["mlp": mlp, "lenet": lenet]

    /// Checks that the layers fit together, stay within every documented limit and end in `classes` outputs;
    /// returns the per-layer input shapes. All shape arithmetic is checked before it is done, so no spec —
    /// from a file or from the network — can overflow or trap.
    @discardableResult
    public func validate() throws(ConfigurationError) -> [[Int]] {
        try validatedShapes().inputs
    }

    /// The element count of every parameter tensor in order (weights then bias of each weighted layer), for a
    /// valid spec.
    public func parameterCounts() throws(ConfigurationError) -> [Int] {
        try validatedShapes().parameters
    }

    private func validatedShapes() throws(ConfigurationError) -> (inputs: [[Int]], parameters: [Int]) {
        let d = ModelSpec.maxDimension
        guard input.count == 3, input.allSatisfy({ $0 > 0 && $0 <= d }) else {
            throw ConfigurationError("model '\(name)': input must be [C, H, W] with sizes in 1...\(d), got \(input)")
        }
        guard layers.count <= ModelSpec.maxLayers else {
            throw ConfigurationError("model '\(name)' has \(layers.count) layers, more than \(ModelSpec.maxLayers)")
        }
        guard classes >= 2, classes <= d else {
            throw ConfigurationError("model '\(name)': classes must be in 2...\(d), got \(classes)")
        }
        guard !layers.isEmpty else { throw ConfigurationError("model '\(name)' has no layers") }
        guard input.reduce(1, *) <= ModelSpec.maxElements else {
            throw ConfigurationError("model '\(name)': input \(input) exceeds \(ModelSpec.maxElements) elements")
        }
        var shape = input
        var shapes: [[Int]] = []
        var parameters: [Int] = []
        var totalParameters = 0
        // Each factor is at most 2^16 and every product below is of two or three such factors checked against
        // 2^24 as it grows, so nothing here can overflow Int.
        func elements(_ s: [Int]) -> Int { s.reduce(1, *) }
        for (i, l) in layers.enumerated() {
            shapes.append(shape)
            let at = "model '\(name)' layer \(i)"
            let inputElements = elements(shape)
            switch l {
            case .linear(let o):
                guard o >= 1, o <= d else {
                    throw ConfigurationError("\(at): linear outputs must be in 1...\(d), got \(o)")
                }
                guard inputElements * o <= ModelSpec.maxElements else {
                    throw ConfigurationError(
                        "\(at): \(inputElements)×\(o) weights exceed \(ModelSpec.maxElements) elements")
                }
                parameters += [inputElements * o, o]
                shape = [o]
            case .conv(let ch, let k, let s, let p):
                guard shape.count == 3 else {
                    throw ConfigurationError("\(at): conv needs a [C, H, W] input, got \(shape)")
                }
                guard ch >= 1, ch <= d else {
                    throw ConfigurationError("\(at): conv channels must be in 1...\(d), got \(ch)")
                }
                let kmax = ModelSpec.maxKernel
                guard k >= 1, k <= kmax, s >= 1, s <= kmax, p >= 0, p <= kmax else {
                    throw ConfigurationError(
                        "\(at): conv kernel and stride must be in 1...\(kmax) and padding in 0...\(kmax), got kernel "
                            + "\(k), stride \(s), padding \(p)")
                }
                guard shape[1] + 2 * p >= k, shape[2] + 2 * p >= k else {
                    throw ConfigurationError("\(at): kernel \(k) does not fit input \(shape) with padding \(p)")
                }
                let oh = (shape[1] + 2 * p - k) / s + 1
                let ow = (shape[2] + 2 * p - k) / s + 1
                guard oh * ow <= ModelSpec.maxConvPositions else {
                    throw ConfigurationError(
                        "\(at): conv output \(oh)×\(ow) has more than \(ModelSpec.maxConvPositions) positions")
                }
                let patch = shape[0] * k * k
                guard patch <= ModelSpec.maxElements, patch * ch <= ModelSpec.maxElements else {
                    throw ConfigurationError(
                        "\(at): \(ch)×\(shape[0])×\(k)×\(k) weights exceed \(ModelSpec.maxElements) elements")
                }
                guard patch * oh * ow <= ModelSpec.maxElements else {
                    throw ConfigurationError(
                        "\(at): its unfolded input (\(patch)×\(oh * ow)) exceeds \(ModelSpec.maxElements) elements")
                }
                parameters += [patch * ch, ch]
                shape = [ch, oh, ow]
            case .relu: break
            case .maxPool(let s):
                guard shape.count == 3, s >= 1, s <= ModelSpec.maxPoolSize, shape[1] >= s, shape[2] >= s else {
                    throw ConfigurationError(
                        "\(at): maxpool \(s) does not fit input \(shape) (size must be in 1...\(ModelSpec.maxPoolSize))"
                    )
                }
                shape = [shape[0], shape[1] / s, shape[2] / s]
            case .flatten: shape = [elements(shape)]
            }
            guard elements(shape) <= ModelSpec.maxElements else {
                throw ConfigurationError(
                    "\(at): output shape \(shape) exceeds \(ModelSpec.maxElements) elements per sample")
            }
            totalParameters = parameters.reduce(0, +)
            guard totalParameters <= ModelSpec.maxParameters else {
                throw ConfigurationError(
                    "model '\(name)' has more than \(ModelSpec.maxParameters) parameters (at layer \(i))")
            }
            guard parameters.count <= 2 * ModelSpec.maxWeightedLayers else {
                throw ConfigurationError(
                    "model '\(name)' has more than \(ModelSpec.maxWeightedLayers) linear or conv layers")
            }
        }
        guard shape == [classes] else {
            throw ConfigurationError("model '\(name)' ends in shape \(shape), expected [\(classes)] (one per class)")
        }
        return (shapes, parameters)
    }
}
