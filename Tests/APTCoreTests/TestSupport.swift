@testable import APTCore

/// |a − b| ≤ absolute + relative·max(|a|, |b|).
func isApproximatelyEqual(_ a: Double, _ b: Double, absolute: Double = 1e-6, relative: Double = 1e-4) -> Bool {
    abs(a - b) <= absolute + relative * max(abs(a), abs(b))
}

/// The Fashion-MNIST directory of the Debian package.
let fashionMNIST = "/usr/share/datasets/fashion-mnist"
