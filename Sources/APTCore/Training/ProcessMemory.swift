#if canImport(Glibc)
    import CMalloc
    import Glibc
#elseif canImport(Musl)
    import Musl
#elseif canImport(Darwin)
    import Darwin
#endif

/// The process's memory as the kernel accounts it.
public enum ProcessMemory {
    /// Peak resident set size (VmHWM from /proc/self/status), bytes; 0 where unavailable.
    public static func peakResidentBytes() -> Int { status("VmHWM:") }

    /// Resident set size now (VmRSS from /proc/self/status), bytes; 0 where unavailable.
    public static func residentBytes() -> Int { status("VmRSS:") }

    /// Asks the C heap to keep the buffers a training step frees for the next step: up to twice `bytes` (a
    /// step's peak) plus 1 MiB of freed memory stays at the top of the heap instead of going back to the kernel,
    /// and blocks under 32 MiB come from the heap rather than from fresh mappings. Without it glibc's
    /// thresholds depend on the history of the process's allocations, and a step may return its buffers to the
    /// kernel and fault them back in on every step. Only allocation placement changes: the heap in use, the
    /// figure `peak_train_bytes` is checked against, is the same. Returns false where the C library has no
    /// such knobs.
    @discardableResult
    public static func keepStepBuffers(bytes: Int) -> Bool {
        #if canImport(Glibc)
            let trim = min(max(bytes, 0), Int(Int32.max) / 4) * 2 + (1 << 20)
            return apt_heap_keep(trim, 32 << 20) == 1
        #else
            return false
        #endif
    }

    /// A kB field of /proc/self/status, in bytes.
    static func status(_ field: String) -> Int {
        guard let f = fopen("/proc/self/status", "r") else { return 0 }
        defer { fclose(f) }
        var line = [CChar](repeating: 0, count: 256)
        while fgets(&line, Int32(line.count), f) != nil {
            let s = String(decoding: line.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
            if s.hasPrefix(field) {
                let digits = s.filter(\.isNumber)
                return (Int(digits) ?? 0) * 1024
            }
        }
        return 0
    }
}

/// The CPU time the process has used, as the kernel accounts it.
public enum ProcessCPU {
    /// User plus system CPU time of this process so far (getrusage RUSAGE_SELF), seconds.
    public static func seconds() -> Double {
        var usage = rusage()
        guard getrusage(RUSAGE_SELF.rawValue, &usage) == 0 else { return 0 }
        func s(_ t: timeval) -> Double { Double(t.tv_sec) + Double(t.tv_usec) / 1e6 }
        return s(usage.ru_utime) + s(usage.ru_stime)
    }
}

extension LogRecord {
    /// The process's resource figures as log fields: peak resident set size and CPU seconds so far.
    public static var resourceFields: [(name: String, value: Value)] {
        [("peak_rss_bytes", .integer(ProcessMemory.peakResidentBytes())), ("cpu_s", .number(ProcessCPU.seconds()))]
    }
}
