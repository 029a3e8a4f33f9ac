import APTCore
import APTProtocol

/// Checks the energy a node reports for a round against what its policy and its work predict. A step's energy in
/// the engine's cost model is affine in its batch (`a + b·n`, a test holds it to that), so a round of `s` steps
/// over `n` samples costs exactly `s·a + n·b` at given bits, however the steps were split. The bits move within
/// the policy's per-layer ranges during the round (weights, and activation and error codes: the policy's ranges, else
/// the knob's), so the prediction is the interval between the ranges' narrowest and widest ends. A report outside it
/// by more than `tolerance`, or above the round's allowance, is a node the coordinator cannot trust with the budget
/// it claims.
public struct EnergyAudit: Sendable {
    /// Relative slack around the predicted interval (float rounding of the node's meter is far below it).
    public static let tolerance = 0.02
    /// The model every node trains.
    public let model: ModelSpec

    /// An audit for `model`.
    public init(model: ModelSpec) { self.model = model }

    /// The energy `steps` steps over `samples` samples may cost under `policy` on `profile` at `precision`, J.
    public func predicted(
        policy: Policy, profile: DeviceProfile, precision: PrecisionMode = .apt, steps: Int, samples: Int
    ) throws -> ClosedRange<Double> {
        let c = TrainingConfiguration(model: model, precision: precision, tradeoff: policy.tradeoff)
        let cost = try CostModel(
            spec: model, mode: precision, quantization: c.quantization, momentum: c.momentum, profile: profile)
        let ends = [false, true].map { widest in
            let codes = policy.codeBits(widest: widest, otherwise: (c.activationBitRange, c.errorBitRange))
            return cost.roundJoules(
                steps: steps, samples: samples, weightBits: policy.layerBits.map { widest ? $0.max : $0.min },
                activationBits: codes.activations, errorBits: codes.errors)
        }
        return (ends.min() ?? 0)...(ends.max() ?? 0)
    }

    /// Why a report of `reportedJ` for `steps` steps over `samples` samples under `policy` is not credible, or
    /// nil when it is.
    public func disagreement(
        reportedJ: Double, policy: Policy, profile: DeviceProfile, precision: PrecisionMode = .apt, steps: Int,
        samples: Int
    ) throws -> String? {
        guard reportedJ.isFinite, reportedJ >= 0 else { return "reported a non-finite or negative energy" }
        if policy.roundEnergyJ > 0, reportedJ > policy.roundEnergyJ * (1 + 1e-9) {
            return "reported \(reportedJ) J, more than the round's allowance of \(policy.roundEnergyJ) J"
        }
        let range = try predicted(
            policy: policy, profile: profile, precision: precision, steps: steps, samples: samples)
        let low = range.lowerBound * (1 - Self.tolerance)
        let high = range.upperBound * (1 + Self.tolerance)
        guard reportedJ >= low, reportedJ <= high else {
            return "reported \(reportedJ) J for \(steps) steps over \(samples) samples; its policy predicts "
                + "\(range.lowerBound)…\(range.upperBound) J (±\(Int(Self.tolerance * 100))%)"
        }
        return nil
    }
}
