/// The heap a training step holds, phase by phase, from a description alone (the model spec, the precision,
/// the weight bits, the batch size): parameters and momentum, the input batch (until the first weighted
/// layer has taken what it keeps), what each layer keeps for
/// its backward pass, the tensor in flight between layers (floats, or in fixed point the activation codes a
/// weighted layer hands on and the error codes a pooling layer hands back), and every buffer a layer's pass
/// allocates while it runs. Its peak is `peak_train_bytes`; `apt-heap-probe` measures the real heap of the same steps, and a test
/// holds the two within 10%. Each term is the size of an allocation the layer code makes (named beside it),
/// so a change to a layer's buffers must change its term here.
public struct MemoryModel: Sendable {
    /// The model.
    public let spec: ModelSpec
    /// The arithmetic.
    public let mode: PrecisionMode
    /// Bitwidths of activations, errors, momentum and biases.
    public let quantization: QuantizationSettings
    /// Momentum coefficient (no momentum buffer when 0).
    public let momentum: Float
    let inputShapes: [[Int]]

    /// A model for `spec` (validated).
    public init(spec: ModelSpec, mode: PrecisionMode, quantization: QuantizationSettings, momentum: Float)
        throws(ConfigurationError)
    {
        self.init(
            spec: spec, inputShapes: try spec.validate(), mode: mode, quantization: quantization, momentum: momentum)
    }

    /// A model for a spec already validated, with its per-layer input shapes.
    init(
        spec: ModelSpec, inputShapes: [[Int]], mode: PrecisionMode, quantization: QuantizationSettings, momentum: Float
    ) {
        self.spec = spec
        self.mode = mode
        self.quantization = quantization
        self.momentum = momentum
        self.inputShapes = inputShapes
    }

    /// The footprint with every weighted layer's weights at `bits` (fp32: ignored), activations and errors at
    /// the settings' widths.
    public func footprint(batch: Int, uniformWeightBits bits: Int) -> MemoryFootprint {
        footprint(batch: batch, weightBits: [Int](repeating: bits, count: weightedLayerCount))
    }

    /// Number of linear and conv layers.
    public var weightedLayerCount: Int { spec.layers.filter(Network.isWeighted).count }

    /// What a step holds at its peak, by kind, with weighted layer `k` at `weightBits[k]`-bit weights, its input
    /// activation codes at `activationBits[k]` bits and its error codes at `errorBits[k]` (nil: the settings'
    /// widths for every layer).
    public func footprint(
        batch b: Int, weightBits: [Int], activationBits: [Int]? = nil, errorBits: [Int]? = nil
    ) -> MemoryFootprint {
        let fixed = mode.isFixedPoint
        let q = quantization
        let (ordinal, below) = Network.weightedPositions(spec.layers)
        let count = weightedLayerCount
        let aBits = activationBits ?? [Int](repeating: q.activationBits, count: count)
        let eBits = errorBits ?? [Int](repeating: q.errorBits, count: count)
        precondition(
            !fixed || (aBits.count == count && eBits.count == count),
            "MemoryModel: activation and error widths must be given for each of \(count) weighted layers")
        // The running layer's own widths (set per layer below) and those of the codes it hands on.
        var ab = aBits.first ?? q.activationBits
        var eb = eBits.first ?? q.errorBits
        var outBits = ab
        /// Bytes of `n` codes of `bits` bits in working (unpacked) form.
        func codes(_ n: Int, _ bits: Int) -> Int { n * (bits <= 8 ? 1 : 2) }
        /// Bytes of a mask of `n` bits in 64-bit words (ReLU's mask, pooling's signs).
        func maskBytes(_ n: Int) -> Int { (n + 63) / 64 * 8 }
        // Persistent: parameters and momentum.
        var params = 0
        var optimizer = 0
        var k = 0
        let weighted = spec.layers.indices.filter { Network.isWeighted(spec.layers[$0]) }
        for i in weighted {
            let (w, bias) = parameterCounts(i)
            let wb = fixed ? weightBits[k] : 32
            params += fixed ? codes(w, wb) + codes(bias, q.biasBits) : 4 * (w + bias)
            if momentum != 0 { optimizer += fixed ? codes(w + bias, q.momentumBits) : 4 * (w + bias) }
            k += 1
        }
        let firstWeighted = weighted.first ?? 0
        // The step: the input batch, handed over to the network, lives until the first weighted layer has taken
        // what it keeps (fp32 keeps the float batch itself as its saved input). A fixed-point network whose first
        // layer is weighted gets the batch as activation codes (`Dataset.codeBatch`) and keeps them as they are.
        let codeInput = fixed && Network.firstLayerTakesCodes(spec)
        let inputBatch = codeInput ? codes(b * spec.input.reduce(1, *), ab) : 4 * b * spec.input.reduce(1, *)
        var live = inputBatch
        var peak = live
        var saved = 0
        var peakSaved = 0
        var largestWorkspace = 0
        var inFlight = inputBatch  // bytes of the tensor handed to the next layer
        var inFlightCodes = codeInput  // whether it is activation codes
        var inFlightBits = ab  // their width
        var inFlightShared = false  // whether something else keeps the tensor in flight (then it is not freed)
        let lastWeighted = weighted.last ?? -1
        var savedSizes = [Int](repeating: 0, count: spec.layers.count)
        func note(_ transient: Int) {
            peak = max(peak, live + transient)
            largestWorkspace = max(largestWorkspace, transient)
        }
        /// A weighted layer's forward pass keeps `keep` bytes of its input for the backward pass and hands `output`
        /// on. Codes it was handed, when it keeps them unpacked, are themselves what it keeps (nothing new, nothing
        /// freed); otherwise the tensor it was handed is freed unless something else holds it.
        func keepInput(_ i: Int, keep: Int, inputCodes: Bool, output: Int) {
            if inputCodes && ab >= 8 {
                live += output
            } else {
                live += keep + output
                if !inFlightShared { live -= inFlight }
            }
            saved += keep
            savedSizes[i] = keep
            inFlightShared = false
        }
        var fusedThrough = -1  // the last layer fused into a convolution (`Network.fusedPool`)
        // Forward.
        for (i, layer) in spec.layers.enumerated() where i > fusedThrough {
            let input = inputShapes[i]
            let n = input.reduce(1, *)
            if let k = ordinal[i] {
                ab = aBits[k]
                outBits = aBits[min(k + 1, count - 1)]
            }
            switch layer {
            case .flatten:
                break
            case .relu:
                // ReLU: one bit per value, kept (in fixed point, unless the pooling layer above masks the error).
                let mask = !fixed || Network.reluKeepsMask(spec.layers, at: i) ? maskBytes(b * n) : 0
                live += mask
                saved += mask
                savedSizes[i] = mask
                note(0)
            case .maxPool(let s):
                let out = input[0] * (input[1] / s) * (input[2] / s)
                // MaxPool2d: float output, or codes of the input's width with a sign bit per output, kept.
                let y = inFlightCodes ? codes(b * out, inFlightBits) : 4 * b * out
                // The arg-max, packed (`PackedArgmax`), and in fixed point a sign bit per output, kept.
                let argmax =
                    PackedArgmax.byteCount(count: b * out, windowSize: s)
                    + (fixed ? maskBytes(b * out) : 0)
                note(y + argmax)
                live += y + argmax
                saved += argmax
                savedSizes[i] = argmax
                if !inFlightShared { live -= inFlight }
                inFlight = y
                inFlightShared = false
            case .linear(let o):
                let y = 4 * b * o  // Linear: float output
                if fixed {
                    // quantizeDynamic: the input's codes, kept (codes it was handed are taken as they are).
                    let xq = inFlightCodes ? 0 : codes(b * n, ab)
                    let packed = ab < 8 ? PackedCodes.byteCount(count: b * n, bits: ab) : 0
                    note(xq + packed + y)
                    keepInput(i, keep: ab < 8 ? packed : codes(b * n, ab), inputCodes: inFlightCodes, output: y)
                    inFlight = y
                    inFlightCodes = false
                    if i != lastWeighted {
                        // Handed on as activation codes; the float output is freed once they are made.
                        let yq = codes(b * o, outBits)
                        note(yq)
                        live += yq - y
                        inFlight = yq
                        inFlightCodes = true
                        inFlightBits = outBits
                    }
                    inFlightShared = false
                    peakSaved = max(peakSaved, saved)
                    continue
                } else {
                    note(y)
                    live += y
                    saved += inFlight  // the float input is kept as it is (not freed: the saved tensor owns it)
                    savedSizes[i] = inFlight
                }
                inFlight = y
                inFlightShared = false
            case .conv(let ch, let kernel, let stride, let pad):
                let oh = (input[1] + 2 * pad - kernel) / stride + 1
                let ow = (input[2] + 2 * pad - kernel) / stride + 1
                let patch = input[0] * kernel * kernel
                // Conv2d: float output, or (handing on codes) the batch's codes made an image at a time in a float
                // buffer of one image.
                let codesOut = fixed && i != lastWeighted
                // With a pooling layer fused (`Network.fusedPool`): an image's codes in a buffer of one image,
                // rectified and pooled into the batch's pooled codes, and the arg-max and signs the pooling layer
                // keeps.
                let fused = fixed ? Network.fusedPool(spec.layers, at: i) : nil
                let pooledOut = fused.map { b * ch * (oh / $0.size) * (ow / $0.size) }
                let y = codesOut ? codes(pooledOut ?? b * ch * oh * ow, outBits) : 4 * b * ch * oh * ow
                if fixed {
                    let xq = inFlightCodes ? 0 : codes(b * n, ab)
                    let cols = codes(patch * oh * ow, ab)  // one image's unfolded codes
                    let pairs = 2 * ((patch + 1) / 2) * ((oh * ow + 15) & ~15) * 2  // GEMM's K-pair panel
                    let image = codesOut ? 4 * ch * oh * ow : 0
                    let packed = ab < 8 ? PackedCodes.byteCount(count: b * n, bits: ab) : 0
                    if let fused, let pooledOut {
                        let argmax = PackedArgmax.byteCount(count: pooledOut, windowSize: fused.size)
                        let signs = maskBytes(pooledOut)
                        let imageCodes = codes(ch * oh * ow, outBits)
                        note(xq + y + imageCodes + argmax + image + cols + pairs)
                        note(xq + y + imageCodes + argmax + signs)
                        live += argmax + signs
                        saved += argmax + signs
                        savedSizes[fused.pool] = argmax + signs
                        fusedThrough = fused.pool
                    } else {
                        note(xq + y + image + cols + pairs)
                    }
                    note(xq + y + packed)
                    keepInput(i, keep: ab < 8 ? packed : codes(b * n, ab), inputCodes: inFlightCodes, output: y)
                    inFlight = y
                    inFlightCodes = codesOut
                    inFlightBits = outBits
                    inFlightShared = false
                    peakSaved = max(peakSaved, saved)
                    continue
                } else {
                    let cols = 4 * patch * oh * ow
                    note(y + cols)
                    live += y
                    saved += inFlight
                    savedSizes[i] = inFlight
                }
                inFlight = y
                inFlightShared = false
            }
            peakSaved = max(peakSaved, saved)
        }
        // The loss gradient (a copy of the logits) replaces the logits.
        let logits = inFlight
        note(logits)
        live += logits - (inFlightShared ? 0 : logits)
        var error = logits
        /// What the error in flight is: floats; a pooling layer's error codes, made an image at a time by the
        /// convolution below (`PooledErrorCodes`); or codes with a scale per image for the pooling layer below
        /// (`ImageErrorCodes`, made by the weighted layer above it).
        enum ErrorForm { case floats, pooledCodes, imageCodes }
        var form = ErrorForm.floats
        var streamedImage = 0  // bytes of one image's codes, when they are made an image at a time
        /// Bytes of the codes a weighted layer at `i` makes of its input error (`n` per image) for the pooling
        /// layer beneath it, or nil when it makes a float input error.
        func inputErrorCodes(_ i: Int, imageSize n: Int) -> Int? {
            guard fixed, let j = Network.poolBelow(spec.layers, weighted: i), let k = below[j] else { return nil }
            return ImageErrorCodes.byteCount(count: b, imageSize: n, bits: eBits[k])
        }
        // Backward, top layer first.
        for i in spec.layers.indices.reversed() {
            let input = inputShapes[i]
            let n = input.reduce(1, *)
            let needsInput = i > firstWeighted
            if let k = ordinal[i] {
                (ab, eb) = (aBits[k], eBits[k])
            } else if let k = below[i] {
                eb = eBits[k]
            }
            switch spec.layers[i] {
            case .flatten:
                break
            case .relu:
                note(0)  // in place on the error
                live -= savedSizes[i]
            case .maxPool(let s):
                // MaxPool2d: the float input error, or (codes for the weighted layer below) `PooledErrorCodes`:
                // the pooled errors' codes with a scale per image (handed in by the weighted layer above, or made
                // here from its float error, which is then freed) and the arg-max (taken from what the layer
                // kept); the sign bits are freed. The full-size codes are made an image at a time by the layer
                // below.
                let toCodes = fixed && needsInput && Network.poolErrorPath(spec.layers, below: i).codes
                if toCodes {
                    let pooled = b * input[0] * (input[1] / s) * (input[2] / s)
                    let argmax = PackedArgmax.byteCount(count: pooled, windowSize: s)
                    if form != .imageCodes {
                        let made = ImageErrorCodes.byteCount(count: b, imageSize: pooled / b, bits: eb)
                        note(made)
                        live += made - error
                        error = made
                    }
                    live -= savedSizes[i] - argmax
                    error += argmax
                    streamedImage = codes(n, eb)
                    form = .pooledCodes
                } else {
                    let dx = needsInput ? 4 * b * n : 0
                    note(dx)
                    live += dx - error - savedSizes[i]
                    error = dx
                    form = .floats
                }
            case .linear(let o):
                let slice = 4 * min(o, Linear.gradientRows) * n
                if fixed {
                    // The error's codes (made here and the float error freed), the bias gradient.
                    let dq = codes(b * o, eb)
                    let gb = 4 * o
                    note(gb + dq)
                    live += gb + dq - error
                    // The input error: a float GEMM result (B packed a block of columns at a time, A in pairs),
                    // or for the pooling layer beneath its codes, made a few rows at a time.
                    var dx = 0
                    if needsInput {
                        let pairsO = (o + 1) / 2
                        let whole = GEMM.pairedPanelBytes(k: o, n: n)
                        let panel = whole > GEMM.pairedPanelLimit ? GEMM.pairedPanelBytes(k: o, n: 64) : whole
                        if let made = inputErrorCodes(i, imageSize: n) {
                            let rows = min(b, Linear.inputErrorRows)
                            note(made + 4 * rows * n + panel + rows * pairsO * 4)
                            dx = made
                        } else {
                            dx = 4 * b * n
                            note(dx + panel + b * pairsO * 4)
                        }
                        live += dx
                    }
                    // The saved input is packed into K-pairs (packed codes two rows at a time), then freed; the
                    // gradient's slice and one slice of the error's transpose are made after.
                    let unpacked = ab < 8 ? 2 * n : 0  // PairPanel(packing: PackedCodes): two rows
                    let panel = 2 * ((b + 1) / 2) * ((n + 15) & ~15) * 2  // PairPanel of the saved input
                    note(unpacked + panel)
                    live += panel - savedSizes[i]
                    let rows = min(o, Linear.gradientRows)
                    note(slice + codes(rows * b, eb) + rows * ((b + 1) / 2) * 4)
                    live -= panel + dq + gb
                    error = dx
                    form = needsInput && inputErrorCodes(i, imageSize: n) != nil ? .imageCodes : .floats
                } else {
                    let dx = needsInput ? 4 * b * n : 0
                    note(dx + 4 * b * o + slice + 4 * o)  // dyT
                    live += dx - error - savedSizes[i]
                    error = dx
                }
            case .conv(let ch, let kernel, let stride, let pad):
                let oh = (input[1] + 2 * pad - kernel) / stride + 1
                let ow = (input[2] + 2 * pad - kernel) / stride + 1
                let patch = input[0] * kernel * kernel
                let grad = 4 * (ch * patch + ch)
                let rows =
                    fixed ? Conv2d.errorChunkChannels(channels: input[0], kernel: kernel) * kernel * kernel : patch
                let dcols = needsInput ? 4 * rows * oh * ow : 0
                if fixed {
                    // Buffers made on entry (float input error, gradient, bias gradient, unfolded error chunk), then
                    // the error's codes (as handed on, or made here and the float error freed); for the pooling
                    // layer beneath, the input error's codes and a float image of it instead of the float error.
                    let made = needsInput ? inputErrorCodes(i, imageSize: n) : nil
                    let dx = needsInput && made == nil ? 4 * b * n : 0
                    let own =
                        form == .pooledCodes
                        ? 0 : ImageErrorCodes.byteCount(count: b, imageSize: ch * oh * ow, bits: eb)
                    let entry = dx + grad + 4 * ch + dcols
                    note(entry + own)
                    if form != .pooledCodes { live += own - error }
                    let dq = form == .pooledCodes ? error : own
                    let handOn = made.map { $0 + 4 * n } ?? 0
                    let wT = codes(ch * patch, 16)
                    let cols = codes(patch * oh * ow, ab)
                    let unpacked = ab < 8 ? n : 0  // one image of the packed saved input
                    note(entry + handOn + wT + cols + unpacked + streamedImage)
                    live += dx + (made ?? 0) - dq - savedSizes[i]
                    streamedImage = 0
                    error = dx + (made ?? 0)
                    form = made != nil ? .imageCodes : .floats
                } else {
                    let dx = needsInput ? 4 * b * n : 0
                    note(dx + 2 * 4 * patch * oh * ow + 4 * ch * patch + grad + dcols)  // cols, colsT, wT
                    live += dx - error - savedSizes[i]
                    error = dx
                }
            }
        }
        return MemoryFootprint(
            parameterBytes: params, optimizerBytes: optimizer, savedActivationBytes: peakSaved, gradientBytes: 0,
            workspaceBytes: largestWorkspace, stepBytes: peak)
    }

    /// Weight and bias counts of layer `i` (a linear or conv layer).
    func parameterCounts(_ i: Int) -> (weights: Int, bias: Int) {
        let input = inputShapes[i]
        switch spec.layers[i] {
        case .linear(let o): return (input.reduce(1, *) * o, o)
        case .conv(let ch, let k, _, _): return (ch * input[0] * k * k, ch)
        default: return (0, 0)
        }
    }
}
