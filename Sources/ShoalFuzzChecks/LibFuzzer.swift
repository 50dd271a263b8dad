#if FUZZING
/// libFuzzer's driver, linked in by `-sanitize=fuzzer`. SwiftPM gives every executable its own
/// entry point, so the fuzz targets call the driver themselves instead of using libFuzzer's `main`.
@_silgen_name("LLVMFuzzerRunDriver")
private func LLVMFuzzerRunDriver(
    _ argc: UnsafeMutablePointer<CInt>,
    _ argv: UnsafeMutablePointer<UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>>,
    _ callback: @convention(c) (UnsafePointer<UInt8>?, Int) -> CInt
) -> CInt

public enum LibFuzzer {
    /// The check the C callback runs; set once before the driver starts, read only afterwards.
    nonisolated(unsafe) private static var check: ([UInt8]) -> Void = { _ in }

    public static func run(_ check: @escaping ([UInt8]) -> Void) -> Never {
        Self.check = check
        var argc = CommandLine.argc
        var argv = CommandLine.unsafeArgv
        let status = LLVMFuzzerRunDriver(&argc, &argv) { data, size in
            LibFuzzer.check(data.map { Array(UnsafeBufferPointer(start: $0, count: size)) } ?? [])
            return 0
        }
        exit(status)
    }
}

#if canImport(Glibc)
import Glibc
#endif
#endif
