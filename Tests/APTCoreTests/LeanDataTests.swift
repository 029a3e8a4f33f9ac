import CMalloc
import Foundation
import Testing

@testable import APTCore

/// A node keeps only its own shard, as bytes; a test set is streamed, never held whole.
@Suite("Lean data loading", .serialized)
struct LeanDataTests {
    @Test("a shard loaded by streaming is exactly the subset of the whole set, in shard order")
    func shardEqualsSubset() throws {
        let labels = try Dataset.splitLabels(directory: fashionMNIST, train: false)
        let shard = try Partitioner.shards(
            labels: labels, classes: 10, count: 7, scheme: .dirichlet(alpha: 0.5), seed: 3)[2]
        let streamed = try Dataset.split(directory: fashionMNIST, train: false, keeping: shard)
        let whole = try Dataset.split(directory: fashionMNIST, train: false)
        let subset = whole.subset(shard)
        #expect(streamed.images == subset.images)
        #expect(streamed.labels == subset.labels)
        #expect(streamed.count == shard.count)
    }

    @Test("loading a shard holds about the shard's bytes, not the whole file's")
    func shardMemory() throws {
        let labels = try Dataset.splitLabels(directory: fashionMNIST, train: true)
        let shard = try Partitioner.shards(labels: labels, classes: 10, count: 10, scheme: .iid, seed: 0)[1]
        // The heap is the process's: other tests running at the same time can only add to a reading, so the
        // smallest of a few readings is the one to judge.
        var held = Int.max
        for _ in 0..<3 {
            let before = Int(apt_heap_in_use())
            let data = try Dataset.split(directory: fashionMNIST, train: true, keeping: shard)
            held = min(held, Int(apt_heap_in_use()) - before)
            #expect(data.count == 6000)
            withExtendedLifetime(data) {}
        }
        let shardBytes = shard.count * 784
        #expect(
            held < shardBytes + shardBytes / 5, "a 6,000-sample shard holds \(held) bytes (\(shardBytes) of pixels)")
    }

    @Test("a test set streamed in chunks evaluates exactly as the whole set does")
    func streamedEvaluation() throws {
        let q = TrainingConfiguration.defaultQuantization(precision: .apt, tradeoff: 0.5)
        var net = try Network(spec: .mlp, mode: .apt, quantization: q, seed: 5)
        let whole = try Dataset.split(directory: fashionMNIST, train: false)
        let (accuracy, loss) = net.evaluate(whole)
        var sums = EvaluationSums()
        var chunks = 0
        try Dataset.forEachChunk(directory: fashionMNIST, train: false, chunk: 1000) { chunk throws(DataError) in
            chunks += 1
            net.accumulateEvaluation(chunk, into: &sums)
        }
        #expect(chunks == 10)
        #expect(sums.count == 10_000)
        #expect(sums.accuracy == accuracy)
        #expect(sums.meanLoss == loss)
        var limited = EvaluationSums()
        try Dataset.forEachChunk(directory: fashionMNIST, train: false, limit: 2500, chunk: 1000) {
            chunk throws(DataError) in net.accumulateEvaluation(chunk, into: &limited)
        }
        #expect(limited.count == 2500)
    }

    @Test("a truncated images file is named while streaming a shard; a bad selection too")
    func streamingErrors() throws {
        let dir = NSTemporaryDirectory() + "apt-lean-\(getpid())-\(UInt32.random(in: 0...UInt32.max))"
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let images = try Data(contentsOf: URL(fileURLWithPath: fashionMNIST + "/t10k-images-idx3-ubyte.gz"))
        try images.prefix(images.count / 2).write(to: URL(fileURLWithPath: dir + "/t10k-images-idx3-ubyte.gz"))
        try FileManager.default.copyItem(
            atPath: fashionMNIST + "/t10k-labels-idx1-ubyte.gz", toPath: dir + "/t10k-labels-idx1-ubyte.gz")
        #expect(
            throws: DataError(
                path: dir + "/t10k-images-idx3-ubyte.gz", reason: "truncated gzip stream (ends before its trailer)")
        ) {
            try Dataset.split(directory: dir, train: false, keeping: [9_999, 0])
        }
        #expect(throws: DataError.self) {
            try Dataset.forEachChunk(directory: dir, train: false) { _ throws(DataError) in }
        }
        #expect(
            throws: DataError(
                path: dir + "/t10k-labels-idx1-ubyte.gz", reason: "sample 10000 selected, the file has 10000")
        ) {
            try Dataset.split(directory: dir, train: false, keeping: [10_000])
        }
    }
}
