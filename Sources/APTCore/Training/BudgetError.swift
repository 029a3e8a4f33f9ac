#if canImport(Glibc)
    import Glibc
#elseif canImport(Musl)
    import Musl
#elseif canImport(Darwin)
    import Darwin
#endif

/// A memory budget the configuration cannot meet, with what would fit.
public struct BudgetError: Error, CustomStringConvertible, Equatable {
    /// The full message.
    public var message: String
    public var description: String { message }
}
