#if canImport(Glibc)
    import Glibc
#endif

/// Checks that the CPU runs what the engine was compiled for.
public enum CPUFeatures {
    /// Whether this build's kernels use AVX2 and FMA (x86-64 builds without `APT_PORTABLE=1`).
    public static var builtForAVX2: Bool {
        #if APT_X86_AVX2
            return true
        #else
            return false
        #endif
    }

    /// A message when the build needs CPU features this machine lacks, nil when all is well.
    public static func unsupportedMessage() -> String? {
        guard builtForAVX2 else { return nil }
        guard let f = fopen("/proc/cpuinfo", "r") else { return nil }
        defer { fclose(f) }
        var line = [CChar](repeating: 0, count: 4096)
        while fgets(&line, Int32(line.count), f) != nil {
            let s = String(decoding: line.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
            if s.hasPrefix("flags") {
                let flags = Set(s.split(whereSeparator: { $0.isWhitespace }))
                if flags.contains("avx2") && flags.contains("fma") { return nil }
                return
                    "this build uses AVX2 and FMA, which this CPU lacks; rebuild with APT_PORTABLE=1 swift build -c release"
            }
        }
        return nil
    }
}
