import ShoalFuzzChecks

/// Built by `scripts/fuzz tracker-udp SECONDS` (with -sanitize=fuzzer and -DFUZZING) this runs libFuzzer;
/// built normally it replays the files named on its command line through the same check.
@main
struct FuzzTarget {
    static func main() {
        #if FUZZING
        LibFuzzer.run(FuzzChecks.trackerUDP)
        #else
        CorpusReplay.run(FuzzChecks.trackerUDP, arguments: CommandLine.arguments.dropFirst())
        #endif
    }
}
