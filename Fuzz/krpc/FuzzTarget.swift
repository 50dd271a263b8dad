import ShoalFuzzChecks

/// Built by `scripts/fuzz krpc SECONDS` (with -sanitize=fuzzer and -DFUZZING) this runs libFuzzer;
/// built normally it replays the files named on its command line through the same check.
@main
struct FuzzTarget {
    static func main() {
        #if FUZZING
        LibFuzzer.run(FuzzChecks.krpc)
        #else
        CorpusReplay.run(FuzzChecks.krpc, arguments: CommandLine.arguments.dropFirst())
        #endif
    }
}
