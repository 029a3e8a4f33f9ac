import Foundation
import Testing

@testable import APTCore

@Suite("IDX files and partitioning")
struct DataTests {
    func tempFile(_ bytes: [UInt8]) throws -> String {
        let path = NSTemporaryDirectory() + "apt-idx-\(UUID().uuidString)"
        try Data(bytes).write(to: URL(fileURLWithPath: path))
        return path
    }

    func idxHeader(_ dims: [Int]) -> [UInt8] {
        var h: [UInt8] = [0, 0, 0x08, UInt8(dims.count)]
        for d in dims { h += [UInt8(d >> 24 & 255), UInt8(d >> 16 & 255), UInt8(d >> 8 & 255), UInt8(d & 255)] }
        return h
    }

    @Test("a missing file is named with the system's reason")
    func missing() {
        #expect(throws: DataError(path: "/nonexistent/x.idx", reason: "cannot open: No such file or directory")) {
            try IDXReader.read(path: "/nonexistent/x.idx")
        }
    }

    @Test("truncated, malformed and trailing data are each named")
    func malformed() throws {
        let short = try tempFile(idxHeader([10, 2, 2]) + [1, 2, 3, 4, 5, 6, 7])
        #expect(
            throws: DataError(
                path: short, reason: "truncated: header declares [10, 2, 2] = 40 bytes of data, file has 7")
        ) {
            try IDXReader.read(path: short)
        }
        let magic = try tempFile([1, 2, 8, 1, 0, 0, 0, 1, 5])
        #expect(throws: DataError(path: magic, reason: "not an IDX file (magic bytes 0x01 0x02, expected 00 00)")) {
            try IDXReader.read(path: magic)
        }
        let type = try tempFile([0, 0, 0x0D, 1, 0, 0, 0, 1, 5])
        #expect(throws: DataError(path: type, reason: "unsupported IDX element type 0x0d (only 0x08, unsigned byte)")) {
            try IDXReader.read(path: type)
        }
        let tiny = try tempFile([0, 0])
        #expect(throws: DataError(path: tiny, reason: "truncated: 2 bytes, an IDX header needs at least 4")) {
            try IDXReader.read(path: tiny)
        }
        let trailing = try tempFile(idxHeader([2]) + [1, 2, 3])
        #expect(throws: DataError(path: trailing, reason: "1 unexpected trailing bytes after 2 bytes of data")) {
            try IDXReader.read(path: trailing)
        }
        let huge = try tempFile(idxHeader([60000, 60000, 60000]))
        #expect(throws: DataError.self) { try IDXReader.read(path: huge) }
        let ok = try tempFile(idxHeader([2, 1, 2]) + [9, 8, 7, 6])
        #expect(try IDXReader.read(path: ok) == IDXReader.Array(dimensions: [2, 1, 2], bytes: [9, 8, 7, 6]))
    }

    @Test("images and labels that disagree are refused, naming both files")
    func mismatch() throws {
        let images = try tempFile(idxHeader([3, 1, 1]) + [1, 2, 3])
        let labels = try tempFile(idxHeader([2]) + [0, 1])
        #expect(throws: DataError(path: labels, reason: "has 2 labels but \(images) has 3 images")) {
            try Dataset.load(images: images, labels: labels)
        }
        let badLabel = try tempFile(idxHeader([3]) + [0, 1, 12])
        #expect(throws: DataError(path: badLabel, reason: "label 12 at index 2 is outside 0...9")) {
            try Dataset.load(images: images, labels: badLabel)
        }
    }

    @Test("the real Fashion-MNIST test split loads; a truncated gzip copy is refused")
    func realData() throws {
        let test = try Dataset.split(directory: fashionMNIST, train: false)
        #expect(test.count == 10_000 && test.rows == 28 && test.cols == 28)
        #expect(Set(test.labels).count == 10)
        let gz = try Data(contentsOf: URL(fileURLWithPath: fashionMNIST + "/t10k-labels-idx1-ubyte.gz"))
        let cut = try tempFile([UInt8](gz.prefix(gz.count / 2)))
        #expect(throws: DataError(path: cut, reason: "truncated gzip stream (ends before its trailer)")) {
            try IDXReader.read(path: cut)
        }
        var corrupt = [UInt8](gz)
        for i in 20..<60 { corrupt[i] ^= 0x5A }
        let bad = try tempFile(corrupt)
        #expect(throws: DataError.self) { try IDXReader.read(path: bad) }
    }

    static let labels: [UInt8] = (0..<5000).map { UInt8(($0 * 7 + $0 / 13) % 10) }

    func checkDisjointAndComplete(_ shards: [[Int]], total: Int, complete: Bool = true) {
        let all = shards.flatMap { $0 }
        #expect(Set(all).count == all.count, "a sample is in two shards")
        if complete { #expect(all.count == total, "\(all.count) of \(total) samples assigned") }
    }

    @Test("IID shards are equal-sized, disjoint and cover the set")
    func iid() throws {
        let s = try Partitioner.shards(labels: Self.labels, classes: 10, count: 7, scheme: .iid, seed: 1)
        #expect(s.count == 7)
        #expect(s.map(\.count).max()! - s.map(\.count).min()! <= 1)
        checkDisjointAndComplete(s, total: Self.labels.count)
    }

    @Test("labels:K gives each shard exactly K classes", arguments: [1, 2, 3])
    func labelsK(k: Int) throws {
        let s = try Partitioner.shards(labels: Self.labels, classes: 10, count: 10, scheme: .labels(k: k), seed: 4)
        for (i, shard) in s.enumerated() {
            #expect(Set(shard.map { Self.labels[$0] }).count == k, "shard \(i)")
        }
        checkDisjointAndComplete(s, total: Self.labels.count)
    }

    @Test("Dirichlet shards are skewed for small α, and every split is deterministic from the seed")
    func dirichletAndDeterminism() throws {
        let a = try Partitioner.shards(
            labels: Self.labels, classes: 10, count: 10, scheme: .dirichlet(alpha: 0.1), seed: 5)
        let b = try Partitioner.shards(
            labels: Self.labels, classes: 10, count: 10, scheme: .dirichlet(alpha: 0.1), seed: 5)
        let c = try Partitioner.shards(
            labels: Self.labels, classes: 10, count: 10, scheme: .dirichlet(alpha: 0.1), seed: 6)
        #expect(a == b)
        #expect(a != c)
        checkDisjointAndComplete(a, total: Self.labels.count)
        let dominant = a.map { shard -> Double in
            var counts = [Int](repeating: 0, count: 10)
            for i in shard { counts[Int(Self.labels[i])] += 1 }
            return Double(counts.max()!) / Double(max(shard.count, 1))
        }
        #expect(dominant.max()! > 0.4, "α = 0.1 should leave some shard dominated by one class")
        #expect(
            try Partitioner.shards(labels: Self.labels, classes: 10, count: 4, scheme: .iid, seed: 2)
                == Partitioner.shards(labels: Self.labels, classes: 10, count: 4, scheme: .iid, seed: 2))
    }

    @Test("bad partition specs are refused with a message")
    func badSpecs() {
        #expect(throws: ConfigurationError.self) { try PartitionScheme(parsing: "labels:0") }
        #expect(throws: ConfigurationError.self) { try PartitionScheme(parsing: "dirichlet:-1") }
        #expect(throws: ConfigurationError.self) { try PartitionScheme(parsing: "random") }
        #expect(throws: ConfigurationError.self) {
            try Partitioner.shards(labels: Self.labels, classes: 10, count: 2, scheme: .labels(k: 11), seed: 1)
        }
    }

    @Test("data that does not fit the model is refused with both shapes named")
    func dataMustFitModel() throws {
        let trainer = try Trainer(configuration: TrainingConfiguration(model: .mlp, precision: .apt))
        let small = Dataset(images: [UInt8](repeating: 0, count: 2 * 16), labels: [0, 1], rows: 4, cols: 4)
        #expect(throws: ConfigurationError("training images are 4×4 but model 'mlp' expects input [1, 28, 28]")) {
            try trainer.check(small, role: "training")
        }
        let fiveClasses = ModelSpec(
            name: "five", input: [1, 28, 28], classes: 5, layers: [.flatten, .linear(outputs: 5)])
        let t5 = try Trainer(configuration: TrainingConfiguration(model: fiveClasses, precision: .fp32))
        let labels: [UInt8] = [0, 9]
        let d = Dataset(images: [UInt8](repeating: 0, count: 2 * 784), labels: labels, rows: 28, cols: 28)
        #expect(throws: ConfigurationError("test labels go up to 9 but model 'five' has 5 classes")) {
            try t5.check(d, role: "test")
        }
        #expect(throws: Never.self) {
            try trainer.check(
                Dataset(images: [UInt8](repeating: 0, count: 784), labels: [3], rows: 28, cols: 28), role: "test")
        }
    }

    @Test(
        "a code batch holds exactly the codes a fixed-point layer makes of the float batch, at 4, 8 and 12 bits",
        arguments: [4, 8, 12])
    func codeBatch(bits: Int) throws {
        var random = RandomSource(seed: 3)
        var pixels = [UInt8](repeating: 0, count: 5 * 4 * 4)
        for i in pixels.indices { pixels[i] = UInt8(truncatingIfNeeded: random.next()) }
        let data = Dataset(images: pixels, labels: [0, 1, 2, 3, 4], rows: 4, cols: 4)
        let indices = [4, 0, 2]
        var r1 = RandomSource(seed: 7)
        var r2 = RandomSource(seed: 7)
        let batch = data.codeBatch(indices: indices, bits: bits, rounding: .stochastic, random: &r1)
        let codes = try #require(batch.codes)
        #expect(batch.values.isEmpty && batch.count == 3 && batch.shape == [1, 4, 4] && codes.shape == [3, 1, 4, 4])
        let floats = data.batch(indices: indices).values
        let expected = quantizeDynamic(floats, shape: [3, 1, 4, 4], bits: bits, rounding: .stochastic, random: &r2)
        #expect(codes == expected)
        #expect(codes.byteCount == 3 * 16 * (bits <= 8 ? 1 : 2))
    }
}
