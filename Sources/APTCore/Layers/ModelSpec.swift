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

    /// Largest size of one dimension.
    public static let maxDimension = 1 << 16
    /// Largest element count of any tensor.
    public static let maxElements = 1 << 28

    /// The built-in models by name.
    public static let builtIn: [String: ModelSpec] = ["mlp": mlp, "lenet": lenet]

    /// Checks that the layers fit together and end in `classes` outputs; returns the per-layer input shapes.
    @discardableResult
    public func validate() throws(ConfigurationError) -> [[Int]] {
        guard input.count == 3, input.allSatisfy({ $0 > 0 && $0 <= ModelSpec.maxDimension }) else {
            throw ConfigurationError(
                "model '\(name)': input must be [C, H, W] with sizes in 1...\(ModelSpec.maxDimension), got \(input)")
        }
        guard layers.count <= 1024 else { throw ConfigurationError("model '\(name)' has more than 1024 layers") }
        guard classes >= 2 else { throw ConfigurationError("model '\(name)': needs at least 2 classes") }
        guard !layers.isEmpty else { throw ConfigurationError("model '\(name)' has no layers") }
        var shape = input
        var shapes: [[Int]] = []
        for (i, l) in layers.enumerated() {
            shapes.append(shape)
            let at = "model '\(name)' layer \(i)"
            var elements = 1
            for d in shape {
                let (p, o) = elements.multipliedReportingOverflow(by: d)
                guard !o, p <= ModelSpec.maxElements else {
                    throw ConfigurationError("\(at): input shape \(shape) exceeds \(ModelSpec.maxElements) elements")
                }
                elements = p
            }
            switch l {
            case .linear(let o) where o > ModelSpec.maxDimension * 256,
                .conv(let o, _, _, _) where o > ModelSpec.maxDimension:
                throw ConfigurationError("\(at): \(o) outputs is more than this engine supports")
            case .linear(let o) where Int64(elements) * Int64(o) > Int64(ModelSpec.maxElements):
                throw ConfigurationError("\(at): \(elements)×\(o) weights exceed \(ModelSpec.maxElements)")
            default: break
            }
            switch l {
            case .linear(let o):
                guard o > 0 else { throw ConfigurationError("\(at): linear outputs must be positive") }
                shape = [o]
            case .conv(let ch, let k, let s, let p):
                guard shape.count == 3 else {
                    throw ConfigurationError("\(at): conv needs a [C, H, W] input, got \(shape)")
                }
                guard ch > 0, k > 0, s > 0, p >= 0 else {
                    throw ConfigurationError("\(at): conv needs positive channels, kernel, stride and padding ≥ 0")
                }
                let oh = (shape[1] + 2 * p - k) / s + 1
                let ow = (shape[2] + 2 * p - k) / s + 1
                guard shape[1] + 2 * p >= k, shape[2] + 2 * p >= k, oh > 0, ow > 0 else {
                    throw ConfigurationError("\(at): kernel \(k) does not fit input \(shape)")
                }
                shape = [ch, oh, ow]
            case .relu: break
            case .maxPool(let s):
                guard shape.count == 3, s >= 1, s <= 15, shape[1] >= s, shape[2] >= s else {
                    throw ConfigurationError("\(at): maxpool \(s) does not fit input \(shape)")
                }
                shape = [shape[0], shape[1] / s, shape[2] / s]
            case .flatten: shape = [shape.reduce(1, *)]
            }
        }
        guard shape == [classes] else {
            throw ConfigurationError("model '\(name)' ends in shape \(shape), expected [\(classes)] (one per class)")
        }
        return shapes
    }
}
