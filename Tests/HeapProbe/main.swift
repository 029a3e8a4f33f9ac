import APTCore
import CHeapCounter
import Foundation

// apt-heap-probe MODEL PRECISION STEPS [KNOB]: trains STEPS steps of batch 64 on the first samples of Fashion-MNIST's
// test split and prints, as key=value, the heap high-water mark of the training steps (every block malloc
// handed out, counted by the interposed allocator, above what was live before the network was built) next to
// the engine's own `peak_train_bytes`. Used by the memory test; not a user tool. With APT_HEAP_TRACE set it
// prints the heap above the step's start after every layer's forward and backward pass instead (to find
// where a step's memory goes). APT_CODE_BITS="A,A,…/E,E,…" sets each weighted layer's activation and error bits.
let args = CommandLine.arguments
if args.contains("--help") || args.contains("-h") {
    print(
        "usage: apt-heap-probe mlp|lenet apt|fp32|fixed:N STEPS [KNOB]  (prints heap_peak_bytes and peak_train_bytes)")
    exit(0)
}
guard (4...5).contains(args.count), let spec = ModelSpec.builtIn[args[1]], let steps = Int(args[3]),
    let tradeoff = Double(args.count == 5 ? args[4] : "0.5")
else {
    FileHandle.standardError.write(Data("usage: apt-heap-probe mlp|lenet apt|fp32|fixed:N STEPS [KNOB]\n".utf8))
    exit(64)
}
do {
    let precision = try PrecisionMode(parsing: args[2])
    var c = TrainingConfiguration(model: spec, precision: precision, tradeoff: tradeoff)
    c.batchSize = 64
    c.controller.interval = 5  // several re-scalings inside the window
    let data = try Dataset.split(directory: Dataset.defaultDirectory, train: false, keeping: Array(0..<(64 * 20)))
    if ProcessInfo.processInfo.environment["APT_HEAP_TRACE"] != nil {
        // Per layer and pass: the heap high-water above the step's start.
        let q = c.quantization
        var net = try Network(spec: spec, mode: precision, quantization: q, seed: 1)
        var ctx = StepContext(
            mode: precision, quantization: q, hyper: UpdateHyperparameters(learningRate: 0.05, momentum: 0.9),
            random: RandomSource(seed: 2), meter: EnergyMeter(profile: .generic45nm, layers: spec.layers.count),
            training: true)
        for step in 0..<3 {
            let base = apt_heap_current()
            apt_heap_reset_peak()
            let idx = Array((step * 64)..<(step * 64 + 64))
            let x =
                net.takesInputCodes
                ? data.codeBatch(
                    indices: idx, bits: q.activationBits, rounding: q.activationRounding, random: &ctx.random)
                : data.batch(indices: idx)
            var line = "step \(step) batch +\(apt_heap_peak() - base)"
            apt_heap_reset_peak()
            _ = net.trainStep(consume x, labels: data.labels(at: idx)[...], context: &ctx) { layer, backward in
                line += " \(backward ? "b" : "f")\(layer):\(apt_heap_peak() - base)/\(apt_heap_current() - base)"
                apt_heap_reset_peak()
            }
            print(line)
        }
        // Whole session steps: the peak of each above what was live before the session.
        let before = apt_heap_current()
        var session = try TrainingSession(configuration: c, data: data)
        var line = "session built +\(apt_heap_current() - before)"
        for i in 1...12 {
            apt_heap_reset_peak()
            session.step()
            line += " s\(i):\(apt_heap_peak() - before)/\(apt_heap_current() - before)"
        }
        print(line)
        exit(0)
    }
    let baseline = apt_heap_current()
    apt_heap_reset_peak()
    var session = try TrainingSession(configuration: c, data: data)
    if let bits = ProcessInfo.processInfo.environment["APT_CODE_BITS"] {
        let parts = bits.split(separator: "/").map { $0.split(separator: ",").compactMap { Int($0) } }
        guard parts.count == 2 else { throw ConfigurationError("APT_CODE_BITS must be A,A,…/E,E,…") }
        try session.setCodeBits(activations: parts[0], errors: parts[1])
    }
    session.run(steps: steps)
    let peak = apt_heap_peak() - baseline
    let model = session.peakMemory
    print(
        "heap_peak_bytes=\(peak) peak_train_bytes=\(model.totalBytes) parameter_bytes=\(model.parameterBytes) "
            + "optimizer_bytes=\(model.optimizerBytes) saved_bytes=\(model.savedActivationBytes) "
            + "gradient_bytes=\(model.gradientBytes) workspace_bytes=\(model.workspaceBytes)")
} catch {
    FileHandle.standardError.write(Data("error: \(error)\n".utf8))
    exit(1)
}
