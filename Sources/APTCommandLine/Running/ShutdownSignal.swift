import Synchronization

#if canImport(Glibc)
    import Glibc
#elseif canImport(Musl)
    import Musl
#elseif canImport(Darwin)
    import Darwin
#endif

/// SIGINT (Ctrl-C) and SIGTERM (`systemctl stop`, `kill`) turned into a flag that a long-running command polls,
/// so it can stop at a safe point (say BYE, finish a step, leave its files consistent) instead of dying where
/// the signal found it. A second signal of either kind ends the process at once, as a user who presses Ctrl-C
/// twice expects.
public enum ShutdownSignal {
    static let count = Atomic<Int>(0)

    /// Installs the handlers (once, before the work starts) and unblocks the two signals on the calling thread:
    /// a process may inherit them blocked (a parent's signal mask survives exec; test runners and some
    /// supervisors block them), and a blocked SIGTERM would never stop it.
    public static func install() {
        _ = count.load(ordering: .relaxed)
        signal(SIGINT, shutdownHandler)
        signal(SIGTERM, shutdownHandler)
        var set = sigset_t()
        sigemptyset(&set)
        sigaddset(&set, SIGINT)
        sigaddset(&set, SIGTERM)
        pthread_sigmask(SIG_UNBLOCK, &set, nil)
    }

    /// Whether a shutdown has been asked for.
    public static var requested: Bool { count.load(ordering: .relaxed) > 0 }
}

/// Only async-signal-safe work: an atomic increment, and `_exit` on the second signal.
private func shutdownHandler(_ signal: Int32) {
    let (after, _) = ShutdownSignal.count.add(1, ordering: .relaxed)
    if after > 1 { _exit(128 + signal) }
}
