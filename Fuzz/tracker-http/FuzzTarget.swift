import ShoalFuzzChecks

/// Built by `scripts/fuzz tracker-http SECONDS` (with -sanitize=fuzzer and -DFUZZING) this runs libFuzzer;
/// built normally it replays the files named on its command line through the same check.
@main
struct FuzzTarget {
    static func main() {
        #if FUZZING
        LibFuzzer.run(FuzzChecks.trackerHTTP)
        #else
        CorpusReplay.run(FuzzChecks.trackerHTTP, arguments: CommandLine.arguments.dropFirst())
        #endif
    }
}
