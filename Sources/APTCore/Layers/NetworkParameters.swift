/// Reading and writing a network's parameters as plain values, in the order the wire protocol numbers them
/// (weights, then bias, of each weighted layer in layer order).
extension Network {
    /// Number of parameter tensors (two per weighted layer).
    public var parameterTensorCount: Int { parametricIndices.count * 2 }

    /// The parameter tensors as stored: fixed-point codes with their formats, or floats for fp32.
    public var parameterSnapshot: [ParameterBlock.Values] {
        parametricLayers.flatMap { [$0.layer.weights.values, $0.layer.bias.values] }
    }

    /// The element count of each parameter tensor.
    public var parameterTensorSizes: [Int] {
        parametricLayers.flatMap { [$0.layer.weights.count, $0.layer.bias.count] }
    }

    /// Replaces every parameter tensor with `values` (real numbers, e.g. a global model received from the
    /// coordinator), quantised into each tensor's current format with round-to-nearest; fixed-point formats
    /// keep their bitwidth and widen their range where a value would clip. Momentum is kept.
    public mutating func loadParameters(_ values: [[Float]]) throws(ConfigurationError) {
        let sizes = parameterTensorSizes
        guard values.count == sizes.count else {
            throw ConfigurationError("expected \(sizes.count) parameter tensors, got \(values.count)")
        }
        for (t, v) in values.enumerated() {
            guard v.count == sizes[t] else {
                throw ConfigurationError("parameter tensor \(t) has \(v.count) values, the model needs \(sizes[t])")
            }
            guard v.allSatisfy(\.isFinite) else {
                throw ConfigurationError("parameter tensor \(t) holds a NaN or infinite value")
            }
        }
        var random = RandomSource(seed: 0)
        for (n, i) in parametricIndices.enumerated() {
            withParametricLayer(at: i) { layer in
                layer.weights.assign(values[2 * n], random: &random)
                layer.bias.assign(values[2 * n + 1], random: &random)
            }
        }
    }
}

extension Network {
    /// Replaces every parameter tensor with fixed-point codes at their own formats (e.g. a global model a
    /// coordinator sent at this node's precision), in the wire order. In a fixed-point network the codes become
    /// the parameters as they are — no float copy of the model is made — and each weight tensor takes the
    /// incoming format (the controller adapts from there); an fp32 network stores their real values. Shapes
    /// are checked first: a refused load changes nothing. Momentum is kept.
    public mutating func loadParameters(codes tensors: [FixedPointTensor]) throws(ConfigurationError) {
        let sizes = parameterTensorSizes
        guard tensors.count == sizes.count else {
            throw ConfigurationError("expected \(sizes.count) parameter tensors, got \(tensors.count)")
        }
        for (t, v) in tensors.enumerated() where v.count != sizes[t] {
            throw ConfigurationError("parameter tensor \(t) has \(v.count) values, the model needs \(sizes[t])")
        }
        let fixed = mode.isFixedPoint
        for (n, i) in parametricIndices.enumerated() {
            withParametricLayer(at: i) { layer in
                let (w, b) = (tensors[2 * n], tensors[2 * n + 1])
                if fixed {
                    layer.weights.values = .fixed(w.reshaped(layer.weights.shape))
                    layer.bias.values = .fixed(b.reshaped(layer.bias.shape))
                } else {
                    layer.weights.values = .float(w.dequantized())
                    layer.bias.values = .float(b.dequantized())
                }
            }
        }
    }
}

extension ParameterBlock {
    /// Sets the values from reals: floats as they are, fixed point in the current bitwidth with the finest
    /// step that does not clip them (never finer than the current step).
    mutating func assign(_ v: [Float], random: inout RandomSource) {
        switch values {
        case .float: values = .float(v)
        case .fixed(let t):
            let needed = v.withUnsafeBufferPointer { Quantizer.maxAbs($0) }
            var f = FixedPointFormat.covering(maxAbs: needed, bits: t.format.bits)
            if f.fractionBits > t.format.fractionBits { f = t.format }
            values = .fixed(
                FixedPointTensor(quantizing: v, shape: shape, format: f, rounding: .nearest, random: &random))
        }
    }
}

extension FixedPointTensor {
    /// The difference `self − base` in the integer domain: code differences on this tensor's grid, when both
    /// tensors share the format and shape; nil otherwise (re-quantise first).
    public func codeDelta(from base: FixedPointTensor) -> [Int32]? {
        guard base.format == format, base.shape == shape else { return nil }
        return (0..<count).map { storage[$0] - base.storage[$0] }
    }
}
