import ShoalFuzzChecks

/// Built by `scripts/fuzz tracker-state SECONDS` (with -sanitize=fuzzer and -DFUZZING) this runs libFuzzer;
/// built normally it replays the files named on its command line through the same check.
@main
struct FuzzTarget {
    static func main() {
        #if FUZZING
        LibFuzzer.run(FuzzChecks.trackerState)
        #else
        CorpusReplay.run(FuzzChecks.trackerState, arguments: CommandLine.arguments.dropFirst())
        #endif
    }
}
