/// The exit statuses of the command-line tools.
public enum ExitStatus {
    /// Success, and `--help`.
    public static let success: Int32 = 0
    /// A failure at run time.
    public static let failure: Int32 = 1
    /// Bad usage (sysexits EX_USAGE).
    public static let usage: Int32 = 64
}
