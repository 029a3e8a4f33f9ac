/// Softmax followed by cross-entropy against integer labels.
public enum SoftmaxCrossEntropy {
    /// Mean loss over the batch, `softmax − onehot` per sample (the gradient of the summed loss), and how many
    /// samples' largest logit (the first, on a tie) was their label's.
    public static func lossAndGradient(
        logits: Batch, labels: ArraySlice<UInt8>
    ) -> (loss: Float, gradient: Batch, correct: Int) {
        let k = logits.sampleSize
        precondition(labels.count == logits.count, "\(labels.count) labels for \(logits.count) samples")
        var grad = logits.values
        var total: Double = 0
        var correct = 0
        var li = labels.startIndex
        for n in 0..<logits.count {
            let base = n * k
            var mx = -Float.infinity
            var best = 0
            for j in 0..<k where grad[base + j] > mx {
                mx = grad[base + j]
                best = j
            }
            var sum: Float = 0
            for j in 0..<k {
                let e = _expf(grad[base + j] - mx)
                grad[base + j] = e
                sum += e
            }
            let label = Int(labels[li])
            precondition(label < k, "label \(label) out of range for \(k) classes")
            li += 1
            if best == label { correct += 1 }
            for j in 0..<k { grad[base + j] /= sum }
            total += Double(-_logf(max(grad[base + label], 1e-30)))
            grad[base + label] -= 1
        }
        return (
            Float(total / Double(max(logits.count, 1))), Batch(values: grad, count: logits.count, shape: logits.shape),
            correct
        )
    }
}
