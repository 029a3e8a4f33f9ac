import APTCore
import APTProtocol

/// Moving tensors between the wire and the engine without a float copy of the model: a TASK's power-of-two
/// tensors are the engine's fixed-point format already (codes × 2^e = codes · 2^−f with f = −e).
public enum WireTensors {
    /// Why a TASK's tensor cannot be trained from as it is.
    public struct Mismatch: Error, Equatable, CustomStringConvertible, Sendable {
        /// The tensor's index in the message.
        public var index: Int
        /// What was wrong.
        public var reason: String
        public var description: String { "tensor \(index): \(reason)" }
    }

    /// The engine tensor of a dense power-of-two wire tensor: the same codes at the format `(bits, −e)`.
    /// 1-bit codes (±1) are held at 2 bits. A sparse or float-scaled tensor is refused: a coordinator sends the
    /// model dense with power-of-two scales.
    public static func fixedPoint(_ t: QuantizedTensor, index: Int) throws(Mismatch) -> FixedPointTensor {
        guard t.indices == nil else { throw Mismatch(index: index, reason: "is sparse; a model is sent dense") }
        guard case .powerOfTwo(let e) = t.scale else {
            throw Mismatch(index: index, reason: "has a float32 scale; a model is sent with power-of-two scales")
        }
        let format = FixedPointFormat(bits: max(t.bits, FixedPointFormat.minSupportedBits), fractionBits: -Int(e))
        return FixedPointTensor(shape: [t.count], format: format, codes: t.codes)
    }

    /// A dense power-of-two wire tensor of an engine tensor: the same codes, the format's step as `2^e`.
    /// Formats whose step is outside the wire's exponent range (−128…127) are refused.
    public static func wire(_ t: FixedPointTensor, layer: UInt16) throws(Mismatch) -> QuantizedTensor {
        guard let e = Int8(exactly: -t.format.fractionBits) else {
            throw Mismatch(index: Int(layer), reason: "step 2^\(-t.format.fractionBits) is outside the wire's range")
        }
        let codes = (0..<t.count).map { t.storage[$0] }
        return QuantizedTensor(
            layer: layer, count: t.count, bits: t.format.bits, scale: .powerOfTwo(exponent: e), indices: nil,
            codes: codes)
    }
}
