/// Settings of the APT precision controller. See docs/apt.md for the rule and its sources.
public struct ControllerSettings: Hashable, Sendable, Codable {
    /// Evaluate every this many iterations (the papers' K).
    public var interval: Int
    /// Raise a layer's bits when Gavg (mean |update| in steps) falls below this.
    public var lowerThreshold: Double
    /// Lower a layer's bits when Gavg stays above this for `patience` evaluations.
    public var upperThreshold: Double
    /// Consecutive evaluations above `upperThreshold` before a bit is dropped.
    public var patience: Int
    /// Fewest weight bits.
    public var minBits: Int
    /// Most weight bits.
    public var maxBits: Int
    /// Fraction of updates that may saturate in a window before the layer's range grows by one integer bit.
    public var saturationThreshold: Double
    /// The widths the controller may give each layer's input activation codes (nil: they stay at the
    /// quantisation settings' width).
    public var activationBits: ClosedRange<Int>?
    /// The widths the controller may give each layer's error codes (nil: not adapted).
    public var errorBits: ClosedRange<Int>?
    /// Underflow of a layer's activation codes (the fraction of its non-zero values within half a step of zero,
    /// measured over the last steps of a window) above which it gets a bit more, and below which (for `patience`
    /// decisions) a bit less.
    public var activationUnderflow: ClosedRange<Double>
    /// The same for error codes.
    public var errorUnderflow: ClosedRange<Double>

    /// Creates settings.
    public init(
        interval: Int = 50, lowerThreshold: Double = 2, upperThreshold: Double = 16, patience: Int = 2,
        minBits: Int = 4, maxBits: Int = 16, saturationThreshold: Double = 1e-4,
        activationBits: ClosedRange<Int>? = nil, errorBits: ClosedRange<Int>? = nil,
        activationUnderflow: ClosedRange<Double> = 0.02...0.10, errorUnderflow: ClosedRange<Double> = 0.3...0.6
    ) {
        self.interval = interval
        self.lowerThreshold = lowerThreshold
        self.upperThreshold = upperThreshold
        self.patience = patience
        self.minBits = minBits
        self.maxBits = maxBits
        self.saturationThreshold = saturationThreshold
        self.activationBits = activationBits
        self.errorBits = errorBits
        self.activationUnderflow = activationUnderflow
        self.errorUnderflow = errorUnderflow
    }

    /// The settings for trade-off knob `t` in [0, 1]: the thresholds are `lower = 2^(3 − 4t)` and
    /// `upper = 8 · lower`, so each 0.25 of `t` halves the update size (in steps) a layer must sustain before
    /// it is given another bit; the default t = 0.5 gives lower = 2 (measured over 3 seeds: lower = 1 lost
    /// 0.7 points more on `lenet` for 1% less energy). Below 0.75 weights keep at least 10 bits: the large
    /// early updates otherwise talk the controller down to 5–8 bits in the first epoch, which cost `lenet`
    /// 0.5 points on average for under 1% of the energy. From `t = 0.75` weights are capped at 8 bits (Int8
    /// storage) and may go down to 4 (see `TrainingConfiguration.defaultQuantization` for the rest of that
    /// regime). From `t = 0.75` the controller also adapts each layer's activation and error widths from their
    /// underflow, within a bit either side of the knob's width (6…8 at 0.75, 5…7 at 1). Higher `t` saves more
    /// energy and memory; lower keeps more accuracy.
    public static func forTradeoff(_ t: Double) -> ControllerSettings {
        let lower = _pow(2, 3 - 4 * t)
        let codes = t >= 0.75 ? TrainingConfiguration.aggressiveCodeBits(t) : nil
        return ControllerSettings(
            lowerThreshold: lower, upperThreshold: 8 * lower, minBits: t >= 0.75 ? 4 : 10,
            maxBits: t >= 0.75 ? 8 : 16, activationBits: codes.map { ($0 - 1)...($0 + 1) },
            errorBits: codes.map { ($0 - 1)...($0 + 1) })
    }

    /// Checks the settings.
    public func validate() throws(ConfigurationError) {
        let r = FixedPointFormat.minSupportedBits...FixedPointFormat.maxSupportedBits
        guard r.contains(minBits) else {
            throw ConfigurationError(field: "controller.minBits", value: minBits, requirement: "in 2...16")
        }
        guard r.contains(maxBits), minBits <= maxBits else {
            throw ConfigurationError(
                field: "controller.maxBits", value: maxBits, requirement: "in \(minBits)...16 (at least minBits)")
        }
        guard interval >= 1 else {
            throw ConfigurationError(field: "controller.interval", value: interval, requirement: "at least 1")
        }
        guard lowerThreshold > 0, lowerThreshold.isFinite else {
            throw ConfigurationError(
                field: "controller.lowerThreshold", value: lowerThreshold, requirement: "a positive number")
        }
        guard upperThreshold > lowerThreshold, upperThreshold.isFinite else {
            throw ConfigurationError(
                field: "controller.upperThreshold", value: upperThreshold, requirement: "above lowerThreshold")
        }
        guard patience >= 1 else {
            throw ConfigurationError(field: "controller.patience", value: patience, requirement: "at least 1")
        }
        for (name, range) in [("activationBits", activationBits), ("errorBits", errorBits)] {
            if let range, range.lowerBound < 2 || range.upperBound > 16 {
                throw ConfigurationError(field: "controller.\(name)", value: "\(range)", requirement: "within 2...16")
            }
        }
        for (name, range) in [("activationUnderflow", activationUnderflow), ("errorUnderflow", errorUnderflow)]
        where !(range.lowerBound >= 0 && range.upperBound <= 1 && range.lowerBound < range.upperBound) {
            throw ConfigurationError(
                field: "controller.\(name)", value: "\(range)", requirement: "a range within [0, 1], lower below upper")
        }
    }
}

/// A change the controller made to one layer.
public struct PrecisionChange: Hashable, Sendable, Codable {
    /// Why the format changed.
    public enum Reason: String, Sendable, Codable {
        /// Updates underflowed: one more fractional bit (finer step).
        case underflow
        /// Updates were large: one fractional bit fewer.
        case largeUpdates
        /// Weights saturated: one more integer bit (wider range).
        case saturation
        /// The top integer bit was unused: one bit fewer, same step.
        case unusedRange
    }
    /// Iteration at which the change was made.
    public var iteration: Int
    /// Layer index.
    public var layer: Int
    /// Format before.
    public var from: FixedPointFormat
    /// Format after.
    public var to: FixedPointFormat
    /// Why.
    public var reason: Reason
    /// Gavg over the window that led to the change.
    public var gavg: Double
}

/// The APT controller: every `interval` iterations, looks at each weighted layer's update statistics and moves
/// its weight format one bit at a time (see `ControllerSettings` and docs/apt.md).
public struct PrecisionController: Sendable {
    /// The rule's parameters.
    public let settings: ControllerSettings
    private var aboveCount: [Int: Int] = [:]
    /// Per-layer weight-bit ranges (by layer index) that replace `settings.minBits...settings.maxBits`, e.g.
    /// from a coordinator's policy.
    public private(set) var layerRanges: [Int: ClosedRange<Int>] = [:]

    /// Consecutive decisions each layer's activation (index 0) and error (index 1) codes spent below their
    /// underflow range.
    private var codesBelow: [[Int]] = [[], []]

    /// Creates a controller.
    public init(settings: ControllerSettings) { self.settings = settings }

    /// The code widths for the next window, one per weighted layer, from the underflow measured over the last
    /// one: a bit more where underflow is above `underflow`, a bit less where it has been below it for
    /// `patience` decisions, within `range`. `kind` is 0 for activations, 1 for errors. A layer with no values
    /// measured keeps its width. Pure apart from the patience counters.
    public mutating func decideCodeBits(
        kind: Int, bits: [Int], underflow: [UnderflowCounts], range: ClosedRange<Int>,
        thresholds: ClosedRange<Double>
    ) -> [Int] {
        decideCodeBits(
            kind: kind, bits: bits, underflow: underflow,
            ranges: [ClosedRange<Int>](repeating: range, count: bits.count), thresholds: thresholds)
    }

    /// `decideCodeBits` with a range of its own for each layer (a coordinator's policy).
    public mutating func decideCodeBits(
        kind: Int, bits: [Int], underflow: [UnderflowCounts], ranges: [ClosedRange<Int>],
        thresholds: ClosedRange<Double>
    ) -> [Int] {
        precondition(ranges.count == bits.count, "decideCodeBits: \(ranges.count) ranges for \(bits.count) layers")
        if codesBelow[kind].count != bits.count { codesBelow[kind] = [Int](repeating: 0, count: bits.count) }
        var out = bits
        for k in bits.indices where k < underflow.count && underflow[k].nonzero > 0 {
            let range = ranges[k]
            let u = underflow[k].fraction
            if u > thresholds.upperBound {
                codesBelow[kind][k] = 0
                out[k] = min(bits[k] + 1, range.upperBound)
            } else if u < thresholds.lowerBound {
                codesBelow[kind][k] += 1
                if codesBelow[kind][k] >= settings.patience {
                    codesBelow[kind][k] = 0
                    out[k] = max(bits[k] - 1, range.lowerBound)
                }
            } else {
                codesBelow[kind][k] = 0
            }
            out[k] = min(max(out[k], range.lowerBound), range.upperBound)
        }
        return out
    }

    /// The weight bits layer `layer` may use.
    public func range(for layer: Int) -> ClosedRange<Int> { layerRanges[layer] ?? settings.minBits...settings.maxBits }

    /// Sets the weight-bit range of layer `layer` (within 2...16).
    public mutating func setRange(_ range: ClosedRange<Int>, for layer: Int) {
        precondition(
            range.lowerBound >= FixedPointFormat.minSupportedBits
                && range.upperBound <= FixedPointFormat.maxSupportedBits,
            "bit range \(range) outside 2...16")
        layerRanges[layer] = range
    }

    /// The decision for one layer given its window statistics, current format and the largest code in use.
    /// Pure: used by `evaluate` and directly by tests.
    public mutating func decide(
        layer: Int, statistics s: UpdateStatistics, format f: FixedPointFormat, maxAbsCode: Int32
    ) -> (FixedPointFormat, PrecisionChange.Reason)? {
        let g = s.meanAbsUpdateSteps
        let (minBits, maxBits) = (range(for: layer).lowerBound, range(for: layer).upperBound)
        if s.saturationRate > settings.saturationThreshold {
            aboveCount[layer] = 0
            if f.bits < maxBits {
                return (FixedPointFormat(bits: f.bits + 1, fractionBits: f.fractionBits), .saturation)
            }
            return (FixedPointFormat(bits: f.bits, fractionBits: f.fractionBits - 1), .saturation)
        }
        if g < settings.lowerThreshold && s.elements > 0 {
            aboveCount[layer] = 0
            if f.bits < maxBits {
                return (FixedPointFormat(bits: f.bits + 1, fractionBits: f.fractionBits + 1), .underflow)
            }
            return nil
        }
        if g > settings.upperThreshold {
            let c = (aboveCount[layer] ?? 0) + 1
            aboveCount[layer] = c
            if c >= settings.patience && f.bits > minBits {
                aboveCount[layer] = 0
                return (FixedPointFormat(bits: f.bits - 1, fractionBits: f.fractionBits - 1), .largeUpdates)
            }
        } else {
            aboveCount[layer] = 0
        }
        // Drop an integer bit nobody uses (codes below a quarter of the range: two bits of headroom left).
        if f.bits > minBits && maxAbsCode < (f.maxCode + 1) / 4 {
            return (FixedPointFormat(bits: f.bits - 1, fractionBits: f.fractionBits), .unusedRange)
        }
        return nil
    }

    /// Applies the rule to every weighted layer of `network`, re-quantising changed layers, and resets the
    /// statistics. Returns the changes.
    public mutating func evaluate(
        network: inout Network, iteration: Int, random: inout RandomSource
    ) -> [PrecisionChange] {
        var changes: [PrecisionChange] = []
        for i in network.parametricIndices {
            let change: PrecisionChange? = network.withParametricLayer(at: i) { layer in
                defer {
                    layer.weights.resetStatistics()
                    layer.bias.resetStatistics()
                }
                // Only the format and the largest code are read here: a binding of the tensor itself would still
                // hold its codes while they are re-quantised and force a copy of the whole weight matrix.
                guard let format = layer.weights.format else { return nil }
                let largest = layer.weights.maxAbsCode
                let stats = layer.weights.statistics
                guard
                    let (to, reason) = decide(
                        layer: i, statistics: stats, format: format,
                        maxAbsCode: largest)
                else { return nil }
                layer.weights.requantize(to: to, random: &random)
                return PrecisionChange(
                    iteration: iteration, layer: i, from: format, to: to, reason: reason,
                    gavg: stats.meanAbsUpdateSteps)
            }
            if let change { changes.append(change) }
        }
        return changes
    }
}
